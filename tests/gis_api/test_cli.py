"""The `civic-gis` command as a user runs it: a real subprocess on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gis_api import cluster
from gis_api.database import make_engine
from layers import migrate
from layers.catalog import CATALOG
from tests.tiny_city import tiny_city, write_geojson

CLI = [sys.executable, "-m", "gis_api.cli"]


@pytest.fixture
def own_database(cluster_config: cluster.ClusterConfig) -> Iterator[str]:
    """A database of its own, reached through CIVIC_GIS_DATABASE_URL like an external PostGIS."""
    name = f"civic_gis_cli_{uuid.uuid4().hex[:8]}"
    url = cluster.create_database(cluster_config, name)
    yield url
    cluster.drop_database(cluster_config, name)


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def count(url: str, table: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    engine.dispose()
    return n


def test_db_migrate_and_status_on_an_external_database(own_database: str) -> None:
    assert run(own_database, "db", "migrate").returncode == 0
    status = run(own_database, "db", "status")
    assert status.returncode == 0
    head = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()
    assert f"{head} (head {head})" in status.stdout


def test_db_up_refuses_when_an_external_database_is_configured(own_database: str) -> None:
    result = run(own_database, "db", "up")
    assert result.returncode != 0
    assert "CIVIC_GIS_DATABASE_URL" in result.stdout + result.stderr


def test_a_planner_imports_lamps_then_exports_them_as_csv(
    own_database: str, tmp_path: Path
) -> None:
    city = tiny_city()
    grids = write_geojson(city["grids"], tmp_path / "grids.geojson")
    unmigrated = run(own_database, "import", str(grids), "--layer", "grids")
    assert unmigrated.returncode == 2 and "civic-gis db migrate" in unmigrated.stderr
    assert run(own_database, "db", "migrate").returncode == 0
    for spec in CATALOG:
        path = write_geojson(city[spec.id], tmp_path / f"{spec.id}.geojson")
        result = run(own_database, "import", str(path), "--layer", spec.id)
        assert result.returncode == 0, result.stderr
    assert count(own_database, "street_lamps") == len(city["street_lamps"])
    out = tmp_path / "lamps.csv"
    result = run(
        own_database, "export", "--layer", "street_lamps", "--format", "csv", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + len(city["street_lamps"])
    assert "lon" in lines[0] and "lat" in lines[0]


def test_a_bad_file_exits_2_naming_the_row_and_writes_nothing(
    own_database: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "L-1", "status": "lit"},
                        "geometry": {"type": "Point", "coordinates": [129.6, 44.58]},
                    },
                    {
                        "type": "Feature",
                        "properties": {"code": "L-2", "status": "glowing"},
                        "geometry": {"type": "Point", "coordinates": [129.6, 44.58]},
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    assert run(own_database, "db", "migrate").returncode == 0
    result = run(own_database, "import", str(bad), "--layer", "street_lamps")
    assert result.returncode == 2
    assert "row 2" in result.stderr and "status" in result.stderr
    assert count(own_database, "street_lamps") == 0


def test_an_unknown_layer_or_crs_exits_2_naming_it(own_database: str, tmp_path: Path) -> None:
    assert run(own_database, "db", "migrate").returncode == 0
    path = write_geojson(tiny_city()["street_lamps"], tmp_path / "lamps.geojson")
    result = run(own_database, "import", str(path), "--layer", "lamps")
    assert result.returncode == 2 and "lamps" in result.stderr
    result = run(own_database, "import", str(path), "--layer", "street_lamps", "--crs", "EPSG:0")
    assert result.returncode == 2 and "EPSG:0" in result.stderr


@pytest.mark.slow
def test_demo_loads_a_whole_city_once_and_if_empty_keeps_it(own_database: str) -> None:
    result = run(own_database, "demo", "--scale", "small", "--seed", "1")
    assert result.returncode == 0, result.stderr
    counts = {spec.id: count(own_database, spec.table) for spec in CATALOG}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["street_lamps"] >= 1000
    again = run(own_database, "demo", "--if-empty")
    assert again.returncode == 0 and "kept" in again.stdout
    refused = run(own_database, "demo")
    assert refused.returncode != 0
    assert {spec.id: count(own_database, spec.table) for spec in CATALOG} == counts
