"""Geodesic "within d metres" the cheap way (`layers.checks.near`), against PostGIS itself.

The plane may decide a pair only where PostGIS's geodesic `ST_DWithin` would say the
same: pairs are laid out with pyproj.Geod at d ± 2 cm, ± 20 cm and ± 1 m, in every
direction, at four latitudes, and every verdict must equal `ST_DWithin` on geography.
The pairs the database keeps (migration 0007) must equal a fresh computation after every
kind of write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon
from sqlalchemy import Connection, Engine, text

from layers.checks.near import box, points_within, shape_within
from tests.geodesic_city import grids, load, pt, rect

GEOD = Geod(ellps="WGS84")
LATITUDES = (0.5, 22.5, 44.58, 60.0)
AZIMUTHS = tuple(range(0, 360, 30))
DELTAS = (-1.0, -0.2, -0.02, 0.02, 0.2, 1.0)


def _pair_sql(within: str) -> str:
    """One pair of rows `a` and `b` (geom, geog) from WKT, the fast verdict and the truth."""
    return f"""
SELECT {within} AS fast, ST_DWithin(a.geog, b.geog, :d) AS truth,
       ST_Intersects(b.geom, {box("a.geom", ":d")}) AS in_box
FROM (SELECT g AS geom, g::geography AS geog
      FROM (SELECT ST_GeomFromText(:a, 4326) AS g) q) a,
     (SELECT g AS geom, g::geography AS geog
      FROM (SELECT ST_GeomFromText(:b, 4326) AS g) q) b
"""


@pytest.fixture(scope="module")
def conn(session_engine: Engine) -> Iterator[Connection]:
    with session_engine.connect() as c:
        yield c


XY = tuple[float, float]


def at(origin: XY, azimuth: float, metres: float) -> Point:
    """The point `metres` (geodesic) from `origin` (lon, lat) towards `azimuth`."""
    lo, la, _ = GEOD.fwd(origin[0], origin[1], azimuth, metres)
    return Point(lo, la)


def xy(p: Point) -> XY:
    return (float(p.x), float(p.y))


@pytest.mark.parametrize("lat", LATITUDES)
@pytest.mark.parametrize("d", [5.0, 20.0, 70.0, 200.0])
def test_point_pairs_get_postgis_verdicts_and_the_box_holds_them(
    conn: Connection, lat: float, d: float
) -> None:
    sql = text(_pair_sql(points_within("a", "b", ":d")))
    for azimuth in AZIMUTHS:
        for delta in DELTAS:
            b = at((129.6, lat), azimuth, d + delta)
            row = conn.execute(sql, {"a": f"POINT(129.6 {lat})", "b": b.wkt, "d": d}).one()
            assert row.fast == row.truth == (delta < 0), (azimuth, delta)
            assert row.in_box or delta > 0


def _edge_cases(lat: float, d: float) -> list[tuple[Polygon | LineString, Point, float]]:
    """A 20 m x 30 m footprint and a 3 km diagonal road; points off an edge and a corner."""
    sw = (129.6, lat)
    se = xy(at(sw, 90, 20))
    ne = xy(at(se, 0, 30))
    nw = xy(at(sw, 0, 30))
    house = Polygon([sw, se, ne, nw, sw])
    mid_east = xy(at(se, 0, 15))
    road = LineString([sw, xy(at(sw, 45, 3000))])
    road_mid = xy(at(sw, 45, 1500))
    cases: list[tuple[Polygon | LineString, Point, float]] = []
    for delta in DELTAS:
        cases.append((house, at(mid_east, 90, d + delta), delta))  # off the east wall
        cases.append((house, at(ne, 45, d + delta), delta))  # off the corner
        cases.append((road, at(road_mid, 135, d + delta), delta))  # off a long road
    return cases


@pytest.mark.parametrize("lat", LATITUDES)
@pytest.mark.parametrize("d", [5.0, 70.0])
def test_shapes_and_points_get_postgis_verdicts(conn: Connection, lat: float, d: float) -> None:
    sql = text(_pair_sql(shape_within("b", "a", ":d")))
    for shape, point, delta in _edge_cases(lat, d):
        row = conn.execute(sql, {"a": point.wkt, "b": shape.wkt, "d": d}).one()
        if shape.geom_type == "Polygon":  # laid out exactly (a long road bulges off the plane)
            assert row.truth == (delta < 0)
        assert row.fast == row.truth, (shape.geom_type, delta)


# --- the pairs the database keeps --------------------------------------------------------


def _pairs(conn: Connection, relation: str) -> set[tuple[int, int, float]]:
    found = conn.execute(
        text("SELECT a_id, b_id, distance_m FROM near_pairs WHERE relation = :r"),
        {"r": relation},
    )
    return {(a, b, round(m, 6)) for a, b, m in found}


def _fresh(conn: Connection, a: str, b: str, reach: float) -> set[tuple[int, int, float]]:
    pair = "ST_Intersects(b.geom, a.geom)" if reach == 0 else f"ST_DWithin(a.geog, b.geog, {reach})"
    distance = "0" if reach == 0 else "ST_Distance(a.geog, b.geog)"
    found = conn.execute(text(f"SELECT a.id, b.id, {distance} FROM {a} a JOIN {b} b ON {pair}"))
    return {(x, y, round(m, 6)) for x, y, m in found}


def assert_kept_pairs_are_fresh(engine: Engine) -> None:
    with engine.connect() as conn:
        relations = conn.execute(
            text("SELECT relation, a_table, b_table, reach_m FROM near_relations")
        ).all()
        for relation, a, b, reach in relations:
            assert _pairs(conn, relation) == _fresh(conn, a, b, reach), relation


def _sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def town(engine: Engine, tmp_path: Path) -> Engine:
    """Buildings, a compound, entrances, bins and boards a few metres to 150 m apart."""
    compounds = [{"code": "XQ-1", "name": "一号小区", "geometry": rect(10, 10, 190, 190)}]
    buildings = [
        {"code": f"B-{i}", "geometry": rect(40 * i, 40, 40 * i + 20, 60)} for i in range(1, 5)
    ]
    entrances = [
        {"code": f"E-{i}", "owner_layer": "compounds", "owner_code": "XQ-1", "geometry": pt(x, 10)}
        for i, x in enumerate((50, 150, 350), start=1)
    ]
    bins = [
        {"code": f"BIN-{i}", "kind": "collection_point", "geometry": pt(x, 100)}
        for i, x in enumerate((30, 120, 260, 390), start=1)
    ]
    boards = [
        {"code": f"S-{i}", "kind": "core_values", "geometry": pt(x, y)}
        for i, (x, y) in enumerate(((45, 62), (150, 20), (300, 150), (398, 12)), start=1)
    ]
    load(
        engine,
        tmp_path,
        {
            "grids": grids(),
            "compounds": compounds,
            "buildings": buildings,
            "entrances": entrances,
            "bins": bins,
            "signage": boards,
        },
    )
    return engine


def test_imports_keep_every_pair_within_the_reach(town: Engine) -> None:
    assert_kept_pairs_are_fresh(town)
    with town.connect() as conn:
        found = conn.execute(text("SELECT relation, count(*) FROM near_pairs GROUP BY 1")).all()
        counts = {str(r): int(n) for r, n in found}
    assert counts["bins-buildings"] > 0 and counts["signage-compounds"] == 2
    assert counts["signage-entrances"] > 0 and counts["signage-buildings"] > 0


def test_moves_edits_deletes_and_truncates_keep_the_pairs_fresh(town: Engine) -> None:
    # A bin moved far away and one moved next to a building; a board moved out of the compound.
    _sql(
        town,
        "UPDATE bins SET geom = ST_Translate(geom, 0.01, 0) WHERE code = 'BIN-1'",
    )
    _sql(
        town,
        "UPDATE bins SET geom = (SELECT ST_Centroid(geom) FROM buildings WHERE code = 'B-4') "
        "WHERE code = 'BIN-4'",
    )
    _sql(town, "UPDATE signage SET geom = ST_Translate(geom, 0, -0.01) WHERE code = 'S-2'")
    assert_kept_pairs_are_fresh(town)
    # Attributes are read by the checks, not copied: an edit that does not move keeps pairs.
    _sql(town, "UPDATE bins SET condition = 'damaged' WHERE code = 'BIN-2'")
    _sql(town, "UPDATE buildings SET residential = false WHERE code = 'B-2'")
    assert_kept_pairs_are_fresh(town)
    # Buildings and entrances move, appear and go.
    _sql(town, "UPDATE buildings SET geom = ST_Translate(geom, 0.0005, 0) WHERE code = 'B-1'")
    _sql(
        town,
        "INSERT INTO buildings (code, geom) SELECT 'B-NEW', ST_Multi(ST_Buffer(geom, 0.0001)) "
        "FROM bins WHERE code = 'BIN-3'",
    )
    _sql(town, "DELETE FROM buildings WHERE code = 'B-3'")
    _sql(town, "DELETE FROM entrances WHERE code = 'E-2'")
    _sql(town, "DELETE FROM compounds")
    assert_kept_pairs_are_fresh(town)
    _sql(town, "TRUNCATE bins CASCADE")
    assert_kept_pairs_are_fresh(town)
    with town.connect() as conn:
        assert _pairs(conn, "bins-buildings") == set()
