"""`school-zones`, walking method: routes on the road network, against pyproj.Geod sums.

The town is drawn in metres (EPSG:4552, tests/tiny_city.py). A primary school
(campus x -60..0, y -30..30) has its gate E-S1 at (0, 0); roads run up x = 5,
along y = 55 and down x = 145, like a U around a river between x = 5 and 145:

    y=55   RD-N  -20 ───────(5)───────────────────(145)──── 170
                       │ RD-W                        │ RD-E
    y=0   [campus] E-S1 ·(5,0)                 (145,0)·  V-1 (150, 0)
                       │                             │
                     (5,-20)                     (145,-20)

V-1 is 150 m from the campus in a straight line but 260 m on foot; V-2 at
(120, 60) is 180 m on foot. The expected distances are geodesic sums of the
legs of the expected route (pyproj.Geod on WGS-84), computed here, not by
PostGIS.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, Point, box
from sqlalchemy import Connection, Engine, text

from layers.checks.framework import Scope
from layers.checks.school_zones import Restriction, SchoolZones, ZoneParams
from layers.checks.walking import walking_violations, what_if_walking
from layers.profile import load_profile
from tests.tiny_city import wgs

GEOD = Geod(ellps="WGS84")
RULE = SchoolZones()
GRID = "231005001001001"


def walking(limit: float = 200.0) -> ZoneParams:
    """Internet cafés kept `limit` metres on foot from primary schools."""
    return ZoneParams(
        method="walking",
        restrictions=[
            Restriction(venue_types=["internet_cafe"], school_types=["primary"], distance_m=limit)
        ],
    )


def geod_length(*points_m: tuple[float, float]) -> float:
    """Geodesic length of the polyline through these local points."""
    lonlat = [wgs(Point(p)) for p in points_m]
    return float(GEOD.line_length([p.x for p in lonlat], [p.y for p in lonlat]))


def _wkb(geom_m: Any) -> str:
    return str(shapely.to_wkb(wgs(geom_m), hex=True))


def add_road(conn: Connection, code: str, *points: tuple[float, float]) -> None:
    conn.execute(
        text(
            "INSERT INTO roads (code, road_class, geom) "
            "VALUES (:code, 'branch', ST_GeomFromWKB(decode(:wkb, 'hex'), 4326))"
        ),
        {"code": code, "wkb": _wkb(LineString(points))},
    )


def add_venue(conn: Connection, code: str, x: float, y: float) -> None:
    conn.execute(
        text(
            "INSERT INTO venues (code, name, venue_type, geom) "
            "VALUES (:code, :code || '网吧', 'internet_cafe', "
            "ST_GeomFromWKB(decode(:wkb, 'hex'), 4326))"
        ),
        {"code": code, "wkb": _wkb(Point(x, y))},
    )


def add_entrance(conn: Connection, code: str, owner: str, x: float, y: float) -> None:
    layer = "schools" if owner.startswith("SCH") else "venues"
    conn.execute(
        text(
            "INSERT INTO entrances (code, owner_layer, owner_code, geom) "
            "VALUES (:code, :layer, :owner, ST_GeomFromWKB(decode(:wkb, 'hex'), 4326))"
        ),
        {"code": code, "layer": layer, "owner": owner, "wkb": _wkb(Point(x, y))},
    )


@pytest.fixture
def town(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO grids (code, level, name, officer, geom) VALUES "
                "(:code, 'grid', '第1网格', '王丹', "
                "ST_Multi(ST_GeomFromWKB(decode(:wkb, 'hex'), 4326)))"
            ),
            {"code": GRID, "wkb": _wkb(box(-100, -100, 300, 200))},
        )
        conn.execute(
            text(
                "INSERT INTO schools (code, name, school_type, geom) VALUES "
                "('SCH-1', '第一小学', 'primary', "
                "ST_Multi(ST_GeomFromWKB(decode(:wkb, 'hex'), 4326)))"
            ),
            {"wkb": _wkb(box(-60, -30, 0, 30))},
        )
        add_entrance(conn, "E-S1", "SCH-1", 0, 0)
        add_road(conn, "RD-W", (5, -20), (5, 55))
        add_road(conn, "RD-N", (-20, 55), (170, 55))
        add_road(conn, "RD-E", (145, 55), (145, -20))  # starts on RD-N: a T junction
        add_venue(conn, "V-1", 150, 0)
        add_venue(conn, "V-2", 120, 60)
    return engine


def by_venue(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["properties"]["venue_code"]: f for f in found}


def test_a_detour_of_260_m_is_no_violation_though_150_m_is_by_the_boundary(town: Engine) -> None:
    profile = load_profile()
    with town.connect() as conn:
        boundary = RULE.evaluate(conn, Scope("all"), RULE.parameters(profile))
        walk = RULE.evaluate(conn, Scope("all"), RULE.parameters(profile, {"method": "walking"}))
    assert by_venue(boundary.evidence)["V-1"]["properties"]["distance_m"] == pytest.approx(
        150.0, abs=0.05
    )
    assert set(by_venue(walk.evidence)) == {"V-2"}
    assert walk.summary["method"] == "walking"
    assert walk.passed is False


def test_the_walks_measure_to_the_centimetre_along_the_expected_routes(town: Engine) -> None:
    with town.connect() as conn:
        found = by_venue(walking_violations(conn, walking(300.0), "TRUE", {}))
    v1 = found["V-1"]["properties"]
    expected = geod_length((150, 0), (145, 0), (145, 55), (5, 55), (5, 0), (0, 0))
    assert expected == pytest.approx(260.0, abs=0.1)
    assert v1["distance_m"] == pytest.approx(expected, abs=0.05)
    assert v1["venue_leg_m"] == pytest.approx(geod_length((150, 0), (145, 0)), abs=0.05)
    assert v1["school_leg_m"] == pytest.approx(geod_length((5, 0), (0, 0)), abs=0.05)
    assert v1["venue_entrance"] is None
    assert v1["school_entrance"] == "E-S1"
    assert v1["method"] == "walking"

    v2 = found["V-2"]
    expected = geod_length((120, 60), (120, 55), (5, 55), (5, 0), (0, 0))
    assert v2["properties"]["distance_m"] == pytest.approx(expected, abs=0.05)
    # The drawn route is the walk: from the venue to the gate, as long as the distance.
    route = v2["geometry"]
    assert route["type"] == "LineString"
    coords = route["coordinates"]
    lon, lat = zip(*coords, strict=True)
    assert GEOD.line_length(lon, lat) == pytest.approx(v2["properties"]["distance_m"], abs=0.01)
    start, end = wgs(Point(120, 60)), wgs(Point(0, 0))
    assert coords[0] == pytest.approx([start.x, start.y], abs=1e-9)
    assert coords[-1] == pytest.approx([end.x, end.y], abs=1e-9)
    corner = wgs(Point(5, 55))
    assert any(c == pytest.approx([corner.x, corner.y], abs=1e-7) for c in coords)
    assert "180." in v2["properties"]["reason"] and "on foot" in v2["properties"]["reason"]


def test_180_m_on_foot_violates_a_200_m_limit(town: Engine) -> None:
    with town.connect() as conn:
        found = walking_violations(conn, walking(200.0), "TRUE", {})
        assert walking_violations(conn, walking(179.9), "TRUE", {}) == []
    assert [f["properties"]["venue_code"] for f in found] == ["V-2"]
    assert found[0]["properties"]["distance_m"] == pytest.approx(
        geod_length((120, 60), (120, 55), (5, 55), (5, 0), (0, 0)), abs=0.05
    )
    assert found[0]["properties"]["grid_code"] == GRID


def test_the_nearest_pair_of_entrances_counts_not_the_venue_point(town: Engine) -> None:
    with town.begin() as conn:
        add_entrance(conn, "E-V1", "V-2", 120, 80)  # back door: 200 m to E-S1
        add_entrance(conn, "E-V2", "V-2", 60, 62)  # front door
        add_entrance(conn, "E-S2", "SCH-1", -30, 30)  # north gate, nearest road: RD-N's end
    with town.connect() as conn:
        found = by_venue(walking_violations(conn, walking(200.0), "TRUE", {}))
    p = found["V-2"]["properties"]
    assert (p["venue_entrance"], p["school_entrance"]) == ("E-V2", "E-S2")
    expected = geod_length((60, 62), (60, 55), (-20, 55), (-30, 30))
    assert expected == pytest.approx(113.93, abs=0.05)
    assert p["distance_m"] == pytest.approx(expected, abs=0.05)
    assert p["school_leg_m"] == pytest.approx(geod_length((-20, 55), (-30, 30)), abs=0.05)
    assert "E-V2" in p["reason"] and "E-S2" in p["reason"]


def test_a_school_without_entrances_is_reached_at_its_nearest_campus_point(town: Engine) -> None:
    with town.begin() as conn:
        conn.execute(text("DELETE FROM entrances WHERE owner_layer = 'schools'"))
    with town.connect() as conn:
        found = by_venue(walking_violations(conn, walking(200.0), "TRUE", {}))
    p = found["V-2"]["properties"]
    assert p["school_entrance"] is None
    expected = geod_length((120, 60), (120, 55), (5, 55), (5, 30), (0, 30))
    assert p["distance_m"] == pytest.approx(expected, abs=0.05)
    assert "no school entrance registered" in p["reason"]
    assert "V-1" not in found


def test_what_if_a_cafe_opened_at_a_point(town: Engine) -> None:
    here, across = wgs(Point(120, 60)), wgs(Point(150, 0))
    with town.connect() as conn:
        found = what_if_walking(conn, walking(200.0), here.x, here.y, "internet_cafe")
        assert what_if_walking(conn, walking(200.0), across.x, across.y, "internet_cafe") == []
        assert what_if_walking(conn, walking(200.0), here.x, here.y, "tobacco") == []
    assert len(found) == 1
    p = found[0]["properties"]
    assert (p["venue_code"], p["school_code"], p["venue_entrance"]) == ("what-if", "SCH-1", None)
    assert p["distance_m"] == pytest.approx(
        geod_length((120, 60), (120, 55), (5, 55), (5, 0), (0, 0)), abs=0.05
    )


def test_the_network_follows_road_edits_at_once(town: Engine) -> None:
    with town.connect() as conn:
        add_road(conn, "RD-B", (145, 0), (5, 0))  # a bridge, not yet committed
        found = by_venue(walking_violations(conn, walking(200.0), "TRUE", {}))
        conn.rollback()
    assert found["V-1"]["properties"]["distance_m"] == pytest.approx(
        geod_length((150, 0), (145, 0), (5, 0), (0, 0)), abs=0.05
    )
    with town.connect() as conn:
        assert set(by_venue(walking_violations(conn, walking(200.0), "TRUE", {}))) == {"V-2"}


def test_by_unit_counts_walking_violations_per_grid(town: Engine) -> None:
    with town.connect() as conn:
        verdicts = RULE.by_unit(conn, "grid", walking(200.0))
    assert verdicts[GRID].figure == 1.0
    assert verdicts[GRID].passed is False


def test_no_roads_no_walk(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO schools (code, name, school_type, geom) VALUES "
                "('SCH-1', '第一小学', 'primary', "
                "ST_Multi(ST_GeomFromWKB(decode(:wkb, 'hex'), 4326)))"
            ),
            {"wkb": _wkb(box(-60, -30, 0, 30))},
        )
        add_venue(conn, "V-1", 20, 0)
    with engine.connect() as conn:
        assert walking_violations(conn, walking(200.0), "TRUE", {}) == []


@pytest.mark.parametrize(("short_by", "joined"), [(0.3, True), (2.0, False)])
def test_a_road_ending_just_short_of_another_is_joined_to_it(
    town: Engine, short_by: float, joined: bool
) -> None:
    with town.begin() as conn:  # a bridge whose ends undershoot RD-E and RD-W
        add_road(conn, "RD-B", (145 - short_by, 0), (5 + short_by, 0))
    with town.connect() as conn:
        found = by_venue(walking_violations(conn, walking(200.0), "TRUE", {}))
    assert ("V-1" in found) is joined
    if joined:  # RD-E and RD-W bend 0.3 m to meet the bridge: 0.16 m longer than straight
        assert found["V-1"]["properties"]["distance_m"] == pytest.approx(
            geod_length((150, 0), (145, 0), (5, 0), (0, 0)), abs=0.2
        )
