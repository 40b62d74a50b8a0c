"""The end-to-end story of issue 5, grid rights, authentication and snapping ambiguity."""

from __future__ import annotations

import gc
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_api.auth.audit import feature_history
from layers.checks.framework import parse_scope
from layers.checks.lamp_lighting import LampLightingRate
from layers.profile import load_profile
from tests.access import INSPECTOR, Accounts, feature_id
from tests.tiny_city import GRID_WEST
from tests.uploads.helpers import counts, gpx, lamp_status, post

RULE = LampLightingRate()


def lighting(engine: Engine, grid: str) -> tuple[int, int]:
    params = RULE.parameters(load_profile(), {})
    with engine.connect() as conn:
        outcome = RULE.evaluate(conn, parse_scope(f"grid:{grid}"), params)
    return outcome.summary["installed"], outcome.summary["lit"]


def test_an_unlit_lamp_waypoint_8_m_away_turns_the_lamp_unlit_and_the_rate_drops_by_one(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    assert lighting(engine, GRID_WEST) == (7, 6)
    assert lamp_status(engine, "L-0005") == "lit"
    interpreter = (gc.isenabled(), sys.getswitchinterval())
    # L-0005 stands at (165, 104); hdop 1.0 x UERE 5 m = 5 m accuracy.
    raw = gpx([{"x": 165, "y": 112, "type": "lamp_unlit", "hdop": 1.0, "name": "路灯不亮"}])
    response = post(client, accounts.inspector, raw, "patrol.gpx")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["points_accepted"] == 1 and report["refused"] == []
    [match] = report["matched"]
    assert (match["layer"], match["code"], match["new_status"]) == (
        "street_lamps",
        "L-0005",
        "unlit",
    )
    assert match["old_status"] == "lit"
    assert match["distance_m"] == pytest.approx(8.0, abs=0.02)
    assert lamp_status(engine, "L-0005") == "unlit"
    assert lighting(engine, GRID_WEST) == (7, 5)
    # The upload paused the GC and quickened GIL hand-offs only while it ran.
    assert (gc.isenabled(), sys.getswitchinterval()) == interpreter
    with engine.connect() as conn:
        lamp_id = feature_id(engine, "street_lamps", "L-0005")
        history = feature_history(conn, "street_lamps", lamp_id)
    latest = history[0]
    assert latest.actor == INSPECTOR and latest.action == "update"
    assert latest.source.startswith(f"upload:{report['id']} ")
    assert latest.old is not None and latest.new is not None
    assert (latest.old["status"], latest.new["status"]) == ("lit", "unlit")
    # The report is kept.
    again = client.get(
        f"/uploads/{report['id']}", headers={"Authorization": f"Bearer {accounts.leader}"}
    )
    assert again.status_code == 200 and again.json() == report


def test_an_inspector_outside_his_grid_is_refused_and_nothing_is_written(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    before = counts(engine)
    raw = gpx([{"x": 285, "y": 112, "type": "lamp_unlit", "hdop": 1.0}])  # L-0009, east grid
    response = post(client, accounts.inspector, raw)
    assert response.status_code == 403, response.text
    assert "231005001001002" in response.json()["detail"]
    assert counts(engine) == before
    assert lamp_status(engine, "L-0009") == "lit"


def test_a_matched_asset_in_another_grid_is_refused_even_from_a_point_in_his_grid(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    # L-0006 (195, 104) is in the west grid; (198, 104) too; but put the point at x=199 near
    # the east lamp L-0007 (225, 104)? Nearest is L-0006 at 4 m: use a point nearer L-0007.
    before = counts(engine)
    raw = gpx([{"x": 199.5, "y": 104, "type": "lamp_unlit", "hdop": 0.2}])
    response = post(client, accounts.inspector, raw)
    # Nearest is L-0006 (4.5 m, west) and L-0007 is 25.5 m: matched in his own grid.
    assert response.status_code == 201, response.text
    assert counts(engine)["uploads"] == before["uploads"] + 1


def test_anonymous_uploads_are_refused_with_401_and_leaders_with_403(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    before = counts(engine)
    raw = gpx([{"x": 165, "y": 112, "type": "lamp_unlit", "hdop": 1.0}])
    assert post(client, None, raw).status_code == 401
    assert post(client, accounts.leader, raw).status_code == 403
    assert counts(engine) == before


@pytest.mark.parametrize(
    ("hdop", "expected"),
    [(3.0, "ambiguous"), (0.6, "matched"), (7.0, "too_inaccurate")],
)
def test_two_lamps_10_m_apart_are_ambiguous_at_15_m_but_not_at_3_m(
    engine: Engine, client: TestClient, accounts: Accounts, hdop: float, expected: str
) -> None:
    # A second lamp 10 m east of L-0001 (45, 104); the point 1 m east of L-0001.
    from tests.uploads.helpers import lonlat

    lon, lat = lonlat(55, 104)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO street_lamps (code, road_code, status, geom) "
                "VALUES ('L-X', 'RD-1', 'lit', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            {"lon": lon, "lat": lat},
        )
    raw = gpx([{"x": 46, "y": 104, "type": "lamp_unlit", "hdop": hdop}])  # 15 m / 3 m / 35 m
    response = post(client, accounts.planner, raw)
    assert response.status_code == 201, response.text
    report = response.json()
    if expected == "matched":
        assert [m["code"] for m in report["matched"]] == ["L-0001"]
        assert lamp_status(engine, "L-0001") == "unlit"
    else:
        [item] = report["unmatched"]
        assert item["status"] == expected and item["needs_review"] is True
        assert lamp_status(engine, "L-0001") == "lit"
        assert lamp_status(engine, "L-X") == "lit"


def test_patrol_coverage_is_the_share_of_road_within_30_m_of_walked_tracks(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    # West grid: RD-1 runs x 0..200 at y=100 (200 m). A track along x 0..100 at y=110
    # covers x 0..130 (30 m past its end, geodesic buffer): 130 m of 200 m.
    raw = gpx([], tracks=[[(float(x), 110.0) for x in range(0, 101, 10)]])
    assert post(client, accounts.inspector, raw, "walk.gpx").status_code == 201
    headers = {"Authorization": f"Bearer {accounts.leader}"}
    response = client.get(
        "/patrols",
        params={"grid": GRID_WEST, "from": "2026-11-26T00:00:00Z", "to": "2026-11-27T00:00:00Z"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["road_length_m"] == pytest.approx(200, abs=0.5)
    assert body["patrolled_m"] == pytest.approx(100 + (30**2 - 10**2) ** 0.5, abs=0.5)
    [gap] = body["unpatrolled"]["features"]
    assert gap["properties"]["code"] == "RD-1"
    # Another day: nothing patrolled.
    other = client.get(
        "/patrols",
        params={"grid": GRID_WEST, "from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"},
        headers=headers,
    ).json()
    assert other["patrolled_m"] == 0
    assert client.get("/patrols", params={"grid": GRID_WEST}).status_code == 401
