"""Editing features over HTTP: who may, where, at which version, and what the archive keeps.

The tiny city (tests/tiny_city.py): lamps L-0000..L-0006 stand in the west grid
(x 0..200 m), L-0007..L-0011 in the east grid; the inspector 王丹 has the west grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, mapping
from sqlalchemy import Engine, text

from gis_api.app import create_app
from gis_api.settings import Settings
from tests.access import INSPECTOR, Accounts, bearer, city_with_accounts
from tests.concurrency import at_once
from tests.tiny_city import GRID_EAST, GRID_WEST, wgs

LAMPS = "/collections/street_lamps/items"


@pytest.fixture
def accounts(engine: Engine, tmp_path: Path) -> Accounts:
    return city_with_accounts(engine, tmp_path)


@pytest.fixture
def client(database_url: str, accounts: Accounts, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, state_dir=tmp_path / "state")
    with TestClient(create_app(settings)) as client:
        yield client


def lamp(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, status, version, ST_X(geom) AS x, ST_Y(geom) AS y "
                "FROM street_lamps WHERE code = :code"
            ),
            {"code": code},
        ).one()
    return dict(row._mapping)


def read(client: TestClient, token: str, lamp_id: int) -> tuple[dict[str, Any], str]:
    response = client.get(f"{LAMPS}/{lamp_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json(), response.headers["ETag"]


def patch(
    client: TestClient, token: str | None, lamp_id: int, body: dict[str, Any], etag: str | None
) -> Any:
    headers = bearer(token) if token else {}
    if etag:
        headers["If-Match"] = etag
    return client.patch(f"{LAMPS}/{lamp_id}", json=body, headers=headers)


def audit_rows(engine: Engine, layer: str, row_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor_id, actor_name, source, action, old, new FROM audit_log "
                "WHERE layer = :layer AND row_id = :id AND source <> 'database' ORDER BY id"
            ),
            {"layer": layer, "id": row_id},
        ).all()
    return [dict(r._mapping) for r in rows]


def test_anonymous_writes_are_refused_with_401_and_nothing_is_written(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    before = lamp(engine, "L-0001")
    _, etag = read(client, accounts.admin, before["id"])
    for token in (None, "not-a-token", "cgis_000000000000_forged", "eyJhbGciOiJIUzI1NiJ9.e30.x"):
        response = patch(client, token, before["id"], {"properties": {"status": "unlit"}}, etag)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["content-type"].startswith("application/problem+json")
        gone = client.delete(f"{LAMPS}/{before['id']}", headers={"If-Match": etag})
        assert gone.status_code == 401
    basic = client.patch(
        f"{LAMPS}/{before['id']}", json={}, headers={"Authorization": "Basic YWRtaW46eA=="}
    )
    assert basic.status_code == 401
    assert lamp(engine, "L-0001") == before
    assert audit_rows(engine, "street_lamps", before["id"]) == []


def test_an_inspector_edits_in_his_grid_and_is_refused_outside_it_naming_the_grid(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    west, east = lamp(engine, "L-0001"), lamp(engine, "L-0008")
    _, west_tag = read(client, accounts.inspector, west["id"])
    _, east_tag = read(client, accounts.inspector, east["id"])

    outside = patch(
        client, accounts.inspector, east["id"], {"properties": {"status": "unlit"}}, east_tag
    )
    assert outside.status_code == 403, outside.text
    assert GRID_EAST in outside.json()["detail"] and outside.json()["grids"] == [GRID_EAST]
    assert GRID_WEST in outside.json()["detail"]  # his own grids are named too

    # Moving a lamp of his grid into the east grid takes it out of his hands: refused.
    moved = {"geometry": mapping(wgs(Point(260, 104)))}
    away = patch(client, accounts.inspector, west["id"], moved, west_tag)
    assert away.status_code == 403 and GRID_EAST in away.json()["detail"]
    refused = client.delete(
        f"{LAMPS}/{east['id']}", headers={**bearer(accounts.inspector), "If-Match": east_tag}
    )
    assert refused.status_code == 403 and GRID_EAST in refused.json()["detail"]
    assert lamp(engine, "L-0001") == west and lamp(engine, "L-0008") == east

    inside = patch(
        client,
        accounts.inspector,
        west["id"],
        {"properties": {"status": "unlit"}, "geometry": mapping(wgs(Point(50, 105)))},
        west_tag,
    )
    assert inside.status_code == 200, inside.text
    assert inside.json()["properties"]["status"] == "unlit"
    assert inside.headers["ETag"] == f'"street_lamps-{west["id"]}-v2"'
    # A planner is not bound to grids.
    _, east_tag = read(client, accounts.planner, east["id"])
    planned = patch(
        client, accounts.planner, east["id"], {"properties": {"status": "damaged"}}, east_tag
    )
    assert planned.status_code == 200


def test_leaders_read_but_cannot_write(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    target = lamp(engine, "L-0001")
    body, etag = read(client, accounts.leader, target["id"])
    assert body["properties"]["code"] == "L-0001"
    response = patch(
        client, accounts.leader, target["id"], {"properties": {"status": "unlit"}}, etag
    )
    assert response.status_code == 403 and "leader" in response.json()["detail"]
    gone = client.delete(
        f"{LAMPS}/{target['id']}", headers={**bearer(accounts.leader), "If-Match": etag}
    )
    assert gone.status_code == 403
    assert lamp(engine, "L-0001") == target


def test_an_edit_needs_the_current_etag_and_a_stale_one_writes_nothing(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    target = lamp(engine, "L-0002")
    _, etag = read(client, accounts.admin, target["id"])
    change = {"properties": {"status": "unlit"}}
    for missing in (None, "*"):
        response = patch(client, accounts.admin, target["id"], change, missing)
        assert response.status_code == 428, response.text
    assert patch(client, accounts.admin, target["id"], change, etag).status_code == 200
    after_first = lamp(engine, "L-0002")
    stale = patch(client, accounts.admin, target["id"], {"properties": {"status": "missing"}}, etag)
    assert stale.status_code == 412, stale.text
    assert stale.headers["ETag"] == f'"street_lamps-{target["id"]}-v2"'
    weak = patch(client, accounts.admin, target["id"], change, f"W/{stale.headers['ETag']}")
    assert weak.status_code == 412
    assert lamp(engine, "L-0002") == after_first
    gone = client.delete(
        f"{LAMPS}/{target['id']}", headers={**bearer(accounts.admin), "If-Match": etag}
    )
    assert gone.status_code == 412 and lamp(engine, "L-0002") == after_first


def test_two_edits_holding_the_same_etag_exactly_one_wins(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    target = lamp(engine, "L-0003")
    _, etag = read(client, accounts.inspector, target["id"])
    results: dict[str, int] = {}

    def edit(status: str) -> None:
        response = patch(
            client, accounts.inspector, target["id"], {"properties": {"status": status}}, etag
        )
        results[status] = response.status_code

    at_once(edit, ("damaged", "missing"))
    assert sorted(results.values()) == [200, 412], results
    winner = next(s for s, code in results.items() if code == 200)
    after = lamp(engine, "L-0003")
    assert after["status"] == winner and after["version"] == 2
    updates = [
        r for r in audit_rows(engine, "street_lamps", target["id"]) if r["action"] == "update"
    ]
    assert len(updates) == 1 and updates[0]["new"]["status"] == winner


def test_edits_follow_the_catalog_rules_and_name_what_is_wrong(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    target = lamp(engine, "L-0004")
    _, etag = read(client, accounts.admin, target["id"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"properties": {"status": "blinking"}}, "status"),
        ({"properties": {"pole_height_m": 100}}, "maximum"),
        ({"properties": {"colour": "red"}}, "colour"),
        ({"properties": {"status": None}}, "cleared"),
        ({"properties": {"code": "L-9999"}}, "code"),
        ({"properties": {"road_code": "RD-404"}}, "RD-404"),
        (
            {"geometry": {"type": "LineString", "coordinates": [[129.6, 44.58], [129.7, 44.59]]}},
            "Point",
        ),
        ({"geometry": {"type": "Point", "coordinates": [44.58, 129.6]}}, "geometry"),
        ({"geometry": {"type": "Point"}}, "GeoJSON"),
        ({"properties": {"status": "lit"}, "extra": 1}, "extra"),
    ]
    for body, named in cases:
        response = patch(client, accounts.admin, target["id"], body, etag)
        assert response.status_code == 400, (body, response.text)
        assert named in response.json()["detail"], (body, response.json()["detail"])
    assert lamp(engine, "L-0004") == target
    # Choice labels are accepted as imports accept them; read-only properties are ignored.
    ok = patch(
        client,
        accounts.admin,
        target["id"],
        {"type": "Feature", "properties": {"status": "不亮", "code": "L-0004", "version": 7}},
        etag,
    )
    assert ok.status_code == 200, ok.text
    assert lamp(engine, "L-0004")["status"] == "unlit"


def test_derived_and_unknown_layers_and_ids_are_not_edited(
    client: TestClient, accounts: Accounts
) -> None:
    headers = {**bearer(accounts.admin), "If-Match": '"x"'}
    assert (
        client.patch("/collections/school_zones/items/1", json={}, headers=headers).status_code
        == 405
    )
    assert client.patch("/collections/nope/items/1", json={}, headers=headers).status_code == 404
    assert client.patch(f"{LAMPS}/abc", json={}, headers=headers).status_code == 404
    assert client.patch(f"{LAMPS}/999999", json={}, headers=headers).status_code == 404
    text_body = client.patch(
        f"{LAMPS}/1", content=b"status=lit", headers={**headers, "Content-Type": "text/plain"}
    )
    assert text_body.status_code == 415
    inspector = {**bearer(accounts.inspector), "If-Match": '"x"'}
    grids = client.patch("/collections/grids/items/1", json={}, headers=inspector)
    assert grids.status_code == 403


def test_a_delete_is_recorded_and_the_history_tells_the_whole_story(
    client: TestClient, engine: Engine, accounts: Accounts
) -> None:
    target = lamp(engine, "L-0005")
    _, etag = read(client, accounts.inspector, target["id"])
    moved = mapping(wgs(Point(140, 110)))
    edited = patch(
        client,
        accounts.inspector,
        target["id"],
        {"properties": {"status": "unlit"}, "geometry": moved},
        etag,
    )
    assert edited.status_code == 200
    deleted = client.delete(
        f"{LAMPS}/{target['id']}",
        headers={**bearer(accounts.inspector), "If-Match": edited.headers["ETag"]},
    )
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"{LAMPS}/{target['id']}", headers=bearer(accounts.admin)).status_code == 404

    history = client.get(f"{LAMPS}/{target['id']}/history", headers=bearer(accounts.leader))
    assert history.status_code == 200, history.text
    changes = history.json()["changes"]
    assert [c["action"] for c in changes] == ["delete", "update", "insert"]  # newest first
    delete, update, insert = changes
    assert insert["actor"] is None and insert["source"] == "database"
    for change in (update, delete):
        assert change["actor"] == INSPECTOR and change["actor_id"] is not None
        assert change["source"].startswith("request:")
        assert f"/collections/street_lamps/items/{target['id']}" in change["source"]
    assert update["old"]["status"] == "lit" and update["new"]["status"] == "unlit"
    assert update["old"]["geometry"]["coordinates"] == pytest.approx([target["x"], target["y"]])
    assert update["new"]["geometry"]["coordinates"] == pytest.approx(moved["coordinates"])
    assert update["new"]["version"] == 2
    assert delete["old"]["status"] == "unlit" and delete["new"] is None
    assert delete["old"]["geometry"]["coordinates"] == pytest.approx(moved["coordinates"])
    # The request id in the source is the one the response carried.
    assert deleted.headers["X-Request-ID"] in delete["source"]

    assert client.get(f"{LAMPS}/{target['id']}/history").status_code == 401
    assert client.get(f"{LAMPS}/424242/history", headers=bearer(accounts.leader)).status_code == 404
