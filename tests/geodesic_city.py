"""Small exact geographies for check tests, laid out in geodesic metres from one origin.

x metres east along the parallel and y metres north along the meridian of
129.60E 44.58N (pyproj.Geod), so distances the tests assert are computed
independently of PostGIS. Grids reuse the tiny city's codes; community B is a
second community east of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import Point, box
from sqlalchemy import Engine, text

from data.importer import import_file
from layers.catalog import CATALOG
from tests.tiny_city import COMMUNITY, DISTRICT, GRID_EAST, GRID_WEST, STREET, write_geojson

GEOD = Geod(ellps="WGS84")
LON0, LAT0 = 129.60, 44.58
COMMUNITY_B = "231005001002000"
GRID_B = "231005001002001"


def lon(x: float) -> float:
    """Longitude x metres east of the origin (along its parallel's geodesic)."""
    return float(GEOD.fwd(LON0, LAT0, 90, x)[0]) if x else LON0


def lat(y: float) -> float:
    """Latitude y metres north of the origin (along its meridian)."""
    return float(GEOD.fwd(LON0, LAT0, 0, y)[1]) if y else LAT0


def pt(x: float, y: float) -> Point:
    """The point (x, y) metres from the origin."""
    return Point(lon(x), lat(y))


def rect(x0: float, y0: float, x1: float, y1: float) -> Any:
    """The lon/lat box of a rectangle given in metres."""
    return box(lon(x0), lat(y0), lon(x1), lat(y1))


def offset(x: float, y: float, azimuth: float, metres: float) -> Point:
    """The point `metres` (geodesic) from (x, y) towards `azimuth`."""
    lo, la, _ = GEOD.fwd(lon(x), lat(y), azimuth, metres)
    return Point(lo, la)


def grids(community_b: bool = True) -> list[dict[str, Any]]:
    """Community A (x 0-400 m) in two grids; with community B, one more grid at 400-600 m."""

    def cell(code: str, level: str, parent: str | None, geom: Any) -> dict[str, Any]:
        return {"code": code, "level": level, "name": code, "parent_code": parent, "geometry": geom}

    width = 600 if community_b else 400
    cells = [
        cell(DISTRICT, "district", None, rect(0, 0, width, 200)),
        cell(STREET, "street", DISTRICT, rect(0, 0, width, 200)),
        cell(COMMUNITY, "community", STREET, rect(0, 0, 400, 200)),
        cell(GRID_WEST, "grid", COMMUNITY, rect(0, 0, 200, 200)),
        cell(GRID_EAST, "grid", COMMUNITY, rect(200, 0, 400, 200)),
    ]
    if community_b:
        cells += [
            cell(COMMUNITY_B, "community", STREET, rect(400, 0, 600, 200)),
            cell(GRID_B, "grid", COMMUNITY_B, rect(400, 0, 600, 200)),
        ]
    return cells


def load(engine: Engine, tmp_path: Path, layers: dict[str, list[dict[str, Any]]]) -> None:
    """Import the given layers (geometries in WGS-84) through the real importer."""
    for spec in CATALOG:
        if spec.id in layers:
            records = layers[spec.id]
            frame = gpd.GeoDataFrame(
                [{k: v for k, v in r.items() if k != "geometry"} for r in records],
                geometry=[r["geometry"] for r in records],
                crs="EPSG:4326",
            )
            import_file(engine, write_geojson(frame, tmp_path / f"{spec.id}.geojson"), spec)


@pytest.fixture(params=["kept", "measured"])
def near_path(request: pytest.FixtureRequest, engine: Engine) -> Iterator[str]:
    """Run a test on the near pairs the database keeps, and again measuring at run time.

    Measuring is forced by shrinking every distance relation's reach to 1 mm (the checks
    read the pairs only for distances within the reach); after, the reach is put back and
    the pairs kept meanwhile are computed again to it.
    """
    with engine.begin() as conn:
        found = conn.execute(text("SELECT relation, reach_m FROM near_relations")).all()
        reach: dict[str, float] = {str(r): float(m) for r, m in found}
        if request.param == "measured":
            conn.execute(text("UPDATE near_relations SET reach_m = 0.001 WHERE reach_m > 0"))
    try:
        yield str(request.param)
    finally:
        with engine.begin() as conn:
            for relation, metres in reach.items():
                conn.execute(
                    text("UPDATE near_relations SET reach_m = :m WHERE relation = :r"),
                    {"m": metres, "r": relation},
                )
            conn.execute(
                text(
                    "SELECT civic_gis_near_refresh(a_table, NULL, true) "
                    "FROM (SELECT DISTINCT a_table FROM near_relations) t"
                )
            )
