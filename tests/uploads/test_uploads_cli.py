"""`civic-gis upload`: the same path as POST /uploads, audited with source cli."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gis_api.cli import app
from tests.access import INSPECTOR, Accounts
from tests.uploads.helpers import gpx, lamp_status


def test_cli_upload_as_an_inspector_changes_the_lamp_and_replays(
    engine: Engine,
    accounts: Accounts,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIVIC_GIS_DATABASE_URL", database_url)
    path = tmp_path / "walk.gpx"
    path.write_bytes(gpx([{"x": 165, "y": 112, "type": "lamp_unlit", "hdop": 1.0}]))
    runner = CliRunner()
    result = runner.invoke(app, ["upload", str(path), "--user", INSPECTOR])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["matched"][0]["code"] == "L-0005"
    assert lamp_status(engine, "L-0005") == "unlit"
    with engine.connect() as conn:
        source, actor = conn.execute(
            text(
                "SELECT source, actor_name FROM audit_log WHERE layer = 'street_lamps' "
                "ORDER BY id DESC LIMIT 1"
            )
        ).one()
    assert source.startswith(f"upload:{report['id']} cli:upload") and actor == INSPECTOR
    again = runner.invoke(app, ["upload", str(path), "--user", INSPECTOR])
    assert again.exit_code == 0 and json.loads(again.stdout)["id"] == report["id"]
