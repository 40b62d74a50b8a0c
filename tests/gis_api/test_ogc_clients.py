"""Real OGC clients against the running service: GDAL (OAPIF, MVT) and owslib.

The demo city is loaded into a database of its own with `civic-gis demo`, the
service runs under uvicorn on a free port, and the clients talk HTTP to it,
as a planner's QGIS (which uses GDAL) would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gis_api import cluster
from gis_api.database import make_engine
from layers.catalog import COLLECTIONS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def demo_url(cluster_config: cluster.ClusterConfig) -> Iterator[str]:
    name = f"civic_gis_ogc_{uuid.uuid4().hex[:8]}"
    url = cluster.create_database(cluster_config, name)
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "gis_api.cli", "demo", "--scale", "small", "--seed", "3"],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    yield url
    cluster.drop_database(cluster_config, name)


@pytest.fixture(scope="module")
def counts(demo_url: str) -> dict[str, int]:
    engine = make_engine(demo_url)
    with engine.connect() as conn:
        result = {
            spec.id: int(conn.execute(text(f'SELECT count(*) FROM "{spec.table}"')).scalar_one())
            for spec in COLLECTIONS
        }
    engine.dispose()
    return result


@pytest.fixture(scope="module")
def server(demo_url: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": demo_url, "CIVIC_GIS_AUTH_PUBLIC_READS": "true"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gis_api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the service did not start")
        time.sleep(0.3)
    yield base
    process.terminate()
    process.wait(timeout=20)


def gdal(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ogrinfo_lists_every_layer_through_the_oapif_driver(server: str) -> None:
    listing = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{server}/")
    for spec in COLLECTIONS:
        assert spec.id in listing


def test_ogr2ogr_copies_every_layer_with_exactly_the_database_counts(
    server: str, counts: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "city.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server}/")
    for spec in COLLECTIONS:
        summary = gdal("ogrinfo", "-ro", "-so", str(out), spec.id)
        line = next(x for x in summary.splitlines() if x.startswith("Feature Count:"))
        assert int(line.split(":")[1]) == counts[spec.id], spec.id


def test_gdal_reads_a_vector_tile_of_the_demo_city(server: str, tmp_path: Path) -> None:
    import morecantile

    collection = httpx.get(f"{server}/collections/street_lamps").json()
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 15)
    response = httpx.get(
        f"{server}/collections/street_lamps/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}"
    )
    assert response.status_code == 200
    path = tmp_path / f"{tile.y}.pbf"
    path.write_bytes(response.content)
    info = gdal("ogrinfo", "-ro", "-al", "-so", f"MVT:{path}")
    assert "street_lamps" in info
    line = next(x for x in info.splitlines() if x.startswith("Feature Count:"))
    assert int(line.split(":")[1]) > 0


def test_owslib_lists_collections_and_reads_items(server: str, counts: dict[str, int]) -> None:
    from owslib.ogcapi.features import Features

    api = Features(server)
    ids = [c["id"] for c in api.collections()["collections"]]
    assert ids == list(COLLECTIONS.ids())
    page = api.collection_items("street_lamps", limit=50)
    assert page["numberMatched"] == counts["street_lamps"]
    assert len(page["features"]) == 50
    schema = api.collection_queryables("street_lamps")
    assert "status" in schema["properties"]
