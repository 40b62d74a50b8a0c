"""School zones, boundary method: venues at 199.99 m and 200.01 m from a campus, two latitudes.

Venue positions are computed with pyproj.Geod: from the campus's south-west
corner along azimuth 225°, so the corner is the nearest point of the campus and
the geodesic distance is exactly the one asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import Point, Polygon
from sqlalchemy import Engine

from data.importer import import_file
from layers.catalog import SCHOOLS, VENUES
from layers.checks.framework import parse_scope
from layers.checks.school_zones import SchoolZones, what_if_boundary
from layers.profile import load_profile
from tests.tiny_city import write_geojson

GEOD = Geod(ellps="WGS84")
RULE = SchoolZones()


def campus(lon: float, lat: float) -> Polygon:
    """A 100 m x 80 m campus whose south-west corner is (lon, lat)."""
    east_lon, east_lat, _ = GEOD.fwd(lon, lat, 90, 100)
    ne_lon, ne_lat, _ = GEOD.fwd(east_lon, east_lat, 0, 80)
    nw_lon, nw_lat, _ = GEOD.fwd(lon, lat, 0, 80)
    return Polygon([(lon, lat), (east_lon, east_lat), (ne_lon, ne_lat), (nw_lon, nw_lat)])


def load(
    engine: Engine, tmp_path: Path, schools: list[dict[str, Any]], venues: list[dict[str, Any]]
) -> None:
    for spec, rows in ((SCHOOLS, schools), (VENUES, venues)):
        if not rows:
            continue
        frame = gpd.GeoDataFrame(
            [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
            geometry=[r["geometry"] for r in rows],
            crs="EPSG:4326",
        )
        import_file(engine, write_geojson(frame, tmp_path / f"{spec.id}.geojson"), spec)


def venue_at(
    corner: tuple[float, float], metres: float, code: str, kind: str = "internet_cafe"
) -> dict[str, Any]:
    lon, lat, _ = GEOD.fwd(corner[0], corner[1], 225, metres)
    return {"code": code, "name": f"网吧{code}", "venue_type": kind, "geometry": Point(lon, lat)}


@pytest.mark.parametrize(
    "corner", [(129.60, 44.58), (114.05, 22.54)], ids=["mudanjiang", "shenzhen"]
)
def test_a_cafe_at_199_99_m_violates_and_one_at_200_01_m_does_not(
    engine: Engine, tmp_path: Path, corner: tuple[float, float]
) -> None:
    load(
        engine,
        tmp_path,
        [
            {
                "code": "SCH-1",
                "name": "第一小学",
                "school_type": "primary",
                "geometry": campus(*corner),
            }
        ],
        [venue_at(corner, 199.99, "V-IN"), venue_at(corner, 200.01, "V-OUT")],
    )
    with engine.connect() as conn:
        outcome = RULE.evaluate(conn, parse_scope("all"), RULE.parameters(load_profile()))
    assert outcome.passed is False
    assert [f["properties"]["venue_code"] for f in outcome.evidence] == ["V-IN"]
    found = outcome.evidence[0]["properties"]
    assert found["distance_m"] == pytest.approx(199.99, abs=0.005)
    assert found["limit_m"] == 200.0 and found["school_code"] == "SCH-1"
    line = outcome.evidence[0]["geometry"]
    assert line["type"] == "LineString"
    (x1, y1), (x2, y2) = line["coordinates"]
    _, _, drawn = GEOD.inv(x1, y1, x2, y2)
    assert drawn == pytest.approx(199.99, abs=0.05)  # the drawn line ends at the corner


def test_each_venue_type_has_its_own_distance_and_school_types(
    engine: Engine, tmp_path: Path
) -> None:
    corner = (129.60, 44.58)
    load(
        engine,
        tmp_path,
        [
            {
                "code": "K-1",
                "name": "幼儿园",
                "school_type": "kindergarten",
                "geometry": campus(*corner),
            },
        ],
        [
            venue_at(corner, 150, "CAFE-150"),  # kindergarten: cafés 100 m (Guangdong default)
            venue_at(corner, 90, "CAFE-90"),
            venue_at(corner, 40, "TOB-40", "tobacco"),  # tobacco 50 m
            venue_at(corner, 60, "TOB-60", "tobacco"),
            venue_at(corner, 10, "LOT-10", "lottery"),  # not restricted
        ],
    )
    with engine.connect() as conn:
        outcome = RULE.evaluate(conn, parse_scope("all"), RULE.parameters(load_profile()))
    assert sorted(f["properties"]["venue_code"] for f in outcome.evidence) == ["CAFE-90", "TOB-40"]
    assert outcome.summary["restricted_venues"] == 4


def test_a_what_if_point_names_the_governing_school(engine: Engine, tmp_path: Path) -> None:
    corner = (129.60, 44.58)
    load(
        engine,
        tmp_path,
        [
            {
                "code": "SCH-1",
                "name": "第一小学",
                "school_type": "primary",
                "geometry": campus(*corner),
            }
        ],
        [],
    )
    near = GEOD.fwd(corner[0], corner[1], 225, 120)
    far = GEOD.fwd(corner[0], corner[1], 225, 260)
    params = RULE.parameters(load_profile())
    with engine.connect() as conn:
        blocked = what_if_boundary(conn, params, near[0], near[1], "internet_cafe")
        allowed = what_if_boundary(conn, params, far[0], far[1], "internet_cafe")
        lottery = what_if_boundary(conn, params, near[0], near[1], "lottery")
    assert [f["properties"]["school_code"] for f in blocked] == ["SCH-1"]
    assert blocked[0]["properties"]["distance_m"] == pytest.approx(120.0, abs=0.005)
    assert allowed == [] and lottery == []
