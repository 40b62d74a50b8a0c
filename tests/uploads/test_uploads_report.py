"""The upload report lists what the database holds: counts and the first entries of each
listing are kept while the chunks are written, so they are checked here against
field_points itself, on a file of several chunks."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from data.field import CHUNK_SIZE
from layers.field_store import REPORT_LIST_LIMIT
from tests.access import Accounts
from tests.uploads.helpers import gpx, post

_LISTING_SQL = text(
    """
    SELECT CASE WHEN snap IN ('ambiguous', 'too_inaccurate', 'no_asset') THEN 'unmatched'
                ELSE snap END AS listing, id, row, matched_id, matched_code
    FROM field_points WHERE upload_id = :u ORDER BY row, id
    """
)


def _kind(i: int) -> dict[str, Any]:
    if i % 97 == 0:
        return {"type": "违建"}  # creates an illegal-building record
    if i % 5 == 0:
        return {"type": "note"}  # names no asset: listed as not_an_asset_kind
    return {"type": "lamp_unlit", "hdop": 1.0 + (i % 4)}  # matched, ambiguous or no asset


def test_a_patrol_of_several_chunks_is_reported_as_field_points_holds_it(
    engine: Engine, client: TestClient, accounts: Accounts
) -> None:
    n = CHUNK_SIZE + 2_500
    waypoints = [
        {
            "x": 5 + (i * 37) % 390,
            "y": 5 + (i * 53) % 190,
            "time": f"2026-11-26T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            **_kind(i),
        }
        for i in range(n)
    ]
    waypoints.append(dict(waypoints[10]))  # the same waypoint twice: stored once
    response = post(client, accounts.admin, gpx(waypoints), "long-patrol.gpx")
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["points_accepted"] == n and report["duplicates_count"] == 1
    with engine.connect() as conn:
        stored = conn.execute(_LISTING_SQL, {"u": report["id"]}).all()
    by_listing: dict[str, list[Any]] = {}
    for r in stored:
        by_listing.setdefault(r.listing, []).append(r)
    assert set(by_listing) >= {"created", "unmatched", "not_an_asset_kind"}
    assert report["observations_without_asset_kind"] == len(by_listing["not_an_asset_kind"])
    for name in ("matched", "created", "unmatched"):
        rows = by_listing.get(name, [])
        assert report[f"{name}_count"] == len(rows), name
        listed = report[name]
        assert len(listed) == min(len(rows), REPORT_LIST_LIMIT), name
        assert [(e["row"], e["point_id"]) for e in listed] == [(r.row, r.id) for r in rows][
            : len(listed)
        ], name
    assert len(report["unmatched"]) == REPORT_LIST_LIMIT < report["unmatched_count"]
    created = {r.id: (r.matched_id, r.matched_code) for r in by_listing["created"]}
    assert all(created[e["point_id"]] == (e["id"], e["code"]) for e in report["created"])
    assert all(e["code"] == f"WJ-F{e['point_id']}" for e in report["created"])
    matched = {r.id: (r.matched_id, r.matched_code) for r in by_listing.get("matched", [])}
    assert all(matched[e["point_id"]] == (e["id"], e["code"]) for e in report["matched"])
