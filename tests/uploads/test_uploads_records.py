"""Observations that create records: an illegal building is reported, a venue near a school
shows up in `school-zones` (issue 5), both through POST /uploads on the tiny city."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from gis_api.auth.audit import feature_history
from layers.checks.framework import parse_scope
from layers.checks.school_zones import SchoolZones
from layers.profile import load_profile
from tests.access import INSPECTOR, Accounts
from tests.tiny_city import GRID_WEST
from tests.uploads.helpers import gpx, lonlat, post

ZONES = SchoolZones()
GEOD = Geod(ellps="WGS84")


def school_zone_evidence(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        outcome = ZONES.evaluate(conn, parse_scope("all"), ZONES.parameters(load_profile()))
    return [f["properties"] for f in outcome.evidence]


def test_an_illegal_building_observation_creates_a_reported_record_with_history(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    raw = gpx(
        [
            {
                "x": 120,
                "y": 60,
                "type": "违建",
                "name": "新搭彩钢房",
                "hdop": 1.0,
                "time": "2026-11-26T03:00:00Z",
            }
        ]
    )
    response = post(client, accounts.inspector, raw, "patrol.gpx")
    assert response.status_code == 201, response.text
    report = response.json()
    [created] = report["created"]
    assert report["created_count"] == 1 and report["matched"] == []
    assert created["layer"] == "illegal_buildings" and created["row"] == 1
    assert created["code"] == f"WJ-F{created['point_id']}"
    with engine.connect() as conn:
        record = conn.execute(
            text(
                "SELECT b.id, b.status, b.discovered_on, b.properties, g.code AS grid, "
                "ST_AsGeoJSON(b.geom) AS footprint, ST_Area(b.geog) AS area "
                "FROM illegal_buildings b LEFT JOIN grids g ON g.id = b.grid_id "
                "WHERE b.code = :c"
            ),
            {"c": created["code"]},
        ).one()
        point = conn.execute(
            text("SELECT snap, snap_reason, matched_id FROM field_points WHERE id = :p"),
            {"p": created["point_id"]},
        ).one()
        history = feature_history(conn, "illegal_buildings", record.id)
    # Status `reported`, found on the local (UTC+8) date of the observation, in his grid.
    assert record.status == "reported"
    assert str(record.discovered_on) == "2026-11-26"
    assert record.grid == GRID_WEST
    assert record.properties["needs_survey"] is True
    assert record.properties["field_point_id"] == created["point_id"]
    assert record.properties["upload_id"] == report["id"]
    assert record.properties["reported_name"] == "新搭彩钢房"
    # A provisional 4 m x 4 m footprint around the reported point.
    footprint = shape(json.loads(record.footprint))
    assert footprint.contains(Point(*lonlat(120, 60)))
    assert record.area == pytest.approx(16.0, rel=0.02)
    assert (point.snap, point.snap_reason, point.matched_id) == ("created", None, record.id)
    [entry] = history
    assert entry.action == "insert" and entry.actor == INSPECTOR
    assert entry.source.startswith(f"upload:{report['id']} ")


def test_a_venue_observation_near_a_school_shows_up_in_school_zones(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    before = school_zone_evidence(engine)
    assert {p["venue_code"] for p in before} == {"V-1"}  # the café 150 m from SCH-1
    # The campus of SCH-1 is x 20..80, y 130..190: a 网吧 20 m east of its east wall.
    raw = gpx([{"x": 100, "y": 160, "type": "网吧", "name": "星空网咖", "hdop": 1.0}])
    response = post(client, accounts.inspector, raw, "venues.gpx")
    assert response.status_code == 201, response.text
    [created] = response.json()["created"]
    assert created["layer"] == "venues"
    after = school_zone_evidence(engine)
    [found] = [p for p in after if p["venue_code"] == created["code"]]
    assert found["venue_type"] == "internet_cafe" and found["venue_name"] == "星空网咖"
    assert found["school_code"] == "SCH-1" and found["grid_code"] == GRID_WEST
    # Geodesic distance to the campus wall: 20 m in the local metric plane, within a few cm.
    assert found["distance_m"] == pytest.approx(20.0, abs=0.05)
    assert len(after) == len(before) + 1
    with engine.connect() as conn:
        venue = conn.execute(
            text("SELECT properties FROM venues WHERE code = :c"), {"c": created["code"]}
        ).scalar_one()
    assert venue["needs_survey"] is True and venue["field_point_id"] == created["point_id"]


def test_a_venue_far_from_any_school_is_created_but_violates_nothing(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    # (390, 10): 310 m from the campus, beyond the 200 m limit.
    raw = gpx([{"x": 390, "y": 10, "type": "venue_game_hall", "hdop": 1.0}])
    response = post(client, accounts.planner, raw, "far.gpx")
    assert response.status_code == 201, response.text
    [created] = response.json()["created"]
    assert created["layer"] == "venues"
    assert created["code"] not in {p["venue_code"] for p in school_zone_evidence(engine)}
