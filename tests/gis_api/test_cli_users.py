"""`civic-gis user ...` and `civic-gis audit`: what an administrator types, on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gis_api import cli
from gis_api.auth import users
from tests.access import clear_accounts, load_tiny_city
from tests.tiny_city import GRID_EAST, tiny_city, write_geojson


@pytest.fixture
def city(
    engine: Engine, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Engine:
    clear_accounts(engine)
    load_tiny_city(engine, tmp_path)
    monkeypatch.setenv("CIVIC_GIS_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    return engine


def civic_gis(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def principal_name(engine: Engine, token: str) -> str | None:
    with engine.connect() as conn:
        found = users.principal_by_token(conn, token)
    return None if found is None else found.name


def test_an_admin_adds_lists_rotates_and_disables_users(city: Engine) -> None:
    code, out, err = civic_gis(
        "user",
        "add",
        "齐妍爽",
        "--role",
        "inspector",
        "--grid",
        GRID_EAST,
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("cgis_") and "\n" not in token  # stdout is the token alone
    assert "shown once" in err
    assert principal_name(city, token) == "齐妍爽"
    with city.begin() as conn:
        assert users.authenticate(conn, "齐妍爽", "a long enough password") is not None

    code, listing, _ = civic_gis("user", "list")
    assert code == 0 and "齐妍爽" in listing and GRID_EAST in listing and "inspector" in listing
    assert token not in listing and "argon2" not in listing

    code, out, _ = civic_gis("user", "rotate-token", "齐妍爽")
    new = out.strip()
    assert code == 0 and new.startswith("cgis_") and new != token
    assert principal_name(city, token) is None and principal_name(city, new) == "齐妍爽"

    assert civic_gis("user", "disable", "齐妍爽")[0] == 0
    assert principal_name(city, new) is None
    assert "disabled" in civic_gis("user", "list")[1]
    assert civic_gis("user", "enable", "齐妍爽")[0] == 0
    assert principal_name(city, new) == "齐妍爽"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("user", "add", "x", "--role", "mayor"), "unknown role"),
        (("user", "add", "x", "--role", "inspector"), "at least one --grid"),
        (("user", "add", "x", "--role", "inspector", "--grid", "231005001001009"), "no grid"),
        (("user", "add", "x", "--role", "planner", "--grid", GRID_EAST), "only inspectors"),
        (("user", "add", "x", "--role", "leader", "--password-stdin"), "at least 10"),
        (("user", "rotate-token", "nobody"), "no user"),
        (("user", "disable", "nobody"), "no user"),
        (("audit", "--since", "yesterday"), "ISO 8601"),
    ],
)
def test_user_commands_refuse_mistakes_with_a_clear_message(
    city: Engine, args: tuple[str, ...], says: str
) -> None:
    code, out, err = civic_gis(*args, stdin="short\n")
    assert code == 2, out
    assert says in err
    assert "cgis_" not in out


def test_a_cli_import_is_recorded_as_such_and_audit_lists_it(city: Engine, tmp_path: Path) -> None:
    assert civic_gis("user", "add", "root", "--role", "admin")[0] == 0
    bins = tiny_city()["bins"].assign(code=["B-10", "B-11"])
    path = write_geojson(bins, tmp_path / "more_bins.geojson")
    code, _, err = civic_gis("import", str(path), "--layer", "bins")
    assert code == 0, err
    with city.connect() as conn:
        sources = (
            conn.execute(
                text(
                    "SELECT DISTINCT source FROM audit_log "
                    "WHERE layer = 'bins' AND action = 'insert'"
                )
            )
            .scalars()
            .all()
        )
    assert set(sources) == {"database", "cli:import more_bins.geojson"}

    code, out, _ = civic_gis(
        "audit", "--since", "2000-01-01", "--layer", "bins", "--format", "json"
    )
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    imported = [e for e in entries if e["source"] == "cli:import more_bins.geojson"]
    assert sorted(e["new"]["code"] for e in imported) == ["B-10", "B-11"]
    assert all(e["actor"] is None and e["new"]["geometry"]["type"] == "Point" for e in imported)
    code, table, _ = civic_gis("audit", "--since", "2000-01-01T00:00:00+08:00")
    assert code == 0 and "cli:import more_bins.geojson" in table and "street_lamps" in table
    assert civic_gis("audit", "--since", "2999-01-01", "--format", "json")[1] == ""
