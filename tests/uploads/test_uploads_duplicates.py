"""Duplicates within a file and across uploads, a reused Idempotency-Key, and files read and
stored in chunks (issue 5: "a re-sent upload must not duplicate points"), on the tiny city."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.field import CHUNK_SIZE
from tests.access import Accounts
from tests.concurrency import at_once
from tests.uploads.helpers import counts, gpx, lamp_status, post

LAMP_5 = {"x": 165, "y": 112, "type": "lamp_unlit", "hdop": 1.0}  # 8 m from L-0005


def stored_points(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM field_points")).scalar_one())


def waypoint(i: int, **extra: Any) -> dict[str, Any]:
    """The i-th of a walk over the west grid, one second apart, from one phone."""
    return {
        "x": 5 + (i % 190),
        "y": 5 + (i // 190) % 190,
        "time": f"2026-11-26T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "device": "Mate 60",
        **extra,
    }


def test_the_same_waypoint_twice_in_a_file_is_stored_once_and_listed(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    raw = gpx([waypoint(1), waypoint(2), waypoint(1, name="again")])
    response = post(client, accounts.planner, raw)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["points_accepted"] == 2 and report["duplicates_count"] == 1
    assert report["duplicates"] == [{"row": 3, "duplicate_of_row": 1}]
    assert stored_points(engine) == 2


def test_a_point_re_sent_in_another_file_is_a_duplicate_and_changes_nothing_again(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    first = post(client, accounts.inspector, gpx([{**waypoint(1), **LAMP_5}, waypoint(2)]))
    assert first.status_code == 201, first.text
    first_report = first.json()
    assert first_report["matched_count"] == 1 and lamp_status(engine, "L-0005") == "unlit"
    # The lamp is repaired; the phone, whose first answer was lost, re-sends both points
    # with a new one in a new file (another export: other bytes, other hash).
    with engine.begin() as conn:
        conn.execute(text("UPDATE street_lamps SET status = 'lit' WHERE code = 'L-0005'"))
    again = gpx([{**waypoint(1), **LAMP_5, "name": "re-export"}, waypoint(2), waypoint(3)])
    response = post(client, accounts.inspector, again, "resend.gpx")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["id"] != first_report["id"]
    assert report["points_accepted"] == 1 and report["duplicates_count"] == 2
    point_ids = {r["row"]: r["point_id"] for r in first_report["matched"]}
    assert report["duplicates"][0] == {
        "row": 1,
        "duplicate_of_upload": first_report["id"],
        "duplicate_of_row": 1,
        "duplicate_of_point": point_ids[1],
    }
    assert [(d["row"], d["duplicate_of_row"]) for d in report["duplicates"]] == [(1, 1), (2, 2)]
    assert report["matched_count"] == 0 and report["unmatched_count"] == 0
    assert lamp_status(engine, "L-0005") == "lit"  # the old observation does not undo it
    assert stored_points(engine) == 3


def test_another_device_or_a_point_without_time_is_a_new_observation(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    no_time = {"x": 50, "y": 50, "time": None, "device": "Mate 60"}
    assert post(client, accounts.planner, gpx([waypoint(1), no_time])).status_code == 201
    # Same place and second from another phone; the same place again without a time: a
    # point without a time cannot be told from a new visit, so both are kept.
    raw = gpx([waypoint(1, device="iPhone 15"), no_time, waypoint(4)])
    response = post(client, accounts.planner, raw, "other.gpx")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["points_accepted"] == 3 and report["duplicates"] == []
    assert stored_points(engine) == 5


def test_overlapping_files_sent_at_once_store_each_point_once(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    shared = [waypoint(i) for i in range(50)]
    files = [gpx([*shared, waypoint(100 + k)]) for k in range(5)]
    reports: list[dict[str, Any]] = []

    def send(k: int) -> None:
        response = post(client, accounts.inspector, files[k], f"phone-{k}.gpx")
        assert response.status_code == 201, response.text
        reports.append(response.json())

    at_once(send, range(5))
    assert stored_points(engine) == 55
    assert sorted(r["points_accepted"] for r in reports) == [1, 1, 1, 1, 51]
    assert sum(r["duplicates_count"] for r in reports) == 4 * 50


def test_an_idempotency_key_reused_for_another_file_is_409_naming_key_and_upload(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    first = post(client, accounts.planner, gpx([waypoint(1)]), headers={"Idempotency-Key": "k-7"})
    assert first.status_code == 201, first.text
    upload_id = first.json()["id"]
    before = counts(engine)
    other = gpx([waypoint(2)])
    response = post(client, accounts.planner, other, headers={"Idempotency-Key": "k-7"})
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["upload"] == upload_id
    assert "Idempotency-Key 'k-7'" in body["detail"]
    assert f"upload {upload_id}" in body["detail"] and "different file" in body["detail"]
    assert counts(engine) == before
    # The same file under the same key is the first upload's answer; a new key stores it.
    replay = post(client, accounts.planner, gpx([waypoint(1)]), headers={"Idempotency-Key": "k-7"})
    assert replay.status_code == 200 and replay.json()["id"] == upload_id
    fresh = post(client, accounts.planner, other, headers={"Idempotency-Key": "k-8"})
    assert fresh.status_code == 201 and fresh.json()["id"] != upload_id


N_BIG = CHUNK_SIZE + 50  # two chunks


def big_walk(last: dict[str, Any]) -> bytes:
    """N_BIG waypoints (row N_BIG - 10 repeats row 3) and then `last`, row N_BIG + 1."""
    points = [waypoint(i) for i in range(N_BIG)]
    points[N_BIG - 11] = dict(points[2])
    return gpx([*points, last])


def test_a_refused_point_in_a_later_chunk_refuses_the_file_and_partial_stores_the_rest(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    bad = {**waypoint(N_BIG), "time": "2999-01-01T00:00:00Z"}  # in the future
    raw = big_walk(bad)
    before = counts(engine)
    refused = post(client, accounts.planner, raw, "big.gpx")
    assert refused.status_code == 422, refused.text
    assert [r["row"] for r in refused.json()["refused"]] == [N_BIG + 1]
    assert counts(engine) == before
    response = post(client, accounts.planner, raw, "big.gpx", partial="true")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "partial" and [r["row"] for r in report["refused"]] == [N_BIG + 1]
    # The duplicate lies in the second chunk, its first copy in the first.
    assert report["duplicates"] == [{"row": N_BIG - 10, "duplicate_of_row": 3}]
    assert report["points_accepted"] == N_BIG - 1 == stored_points(engine)


def test_a_point_outside_his_grid_in_a_later_chunk_is_403_and_nothing_is_written(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    raw = big_walk({**waypoint(N_BIG), "x": 300, "y": 50})  # the east grid
    before = counts(engine)
    response = post(client, accounts.inspector, raw, "big.gpx")
    assert response.status_code == 403, response.text
    assert counts(engine) == before
