"""The map pages over HTTP on the tiny city: languages, grids, the print sheet's register.

Tiny city (tests/tiny_city.py): west grid 231005001001001 (officer 王丹) holds lamps
L-0000..L-0006 (L-0003 unlit), bin B-1, school SCH-1, illegal building WJ-1, sign S-1 and
entrance E-1; east grid 231005001001002 (officer 齐妍爽) holds L-0007..L-0011, bin B-2,
the internet café V-1 150 m from the school, compound XQ-1, building BLD-1 and entrance E-2.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis_api.app import create_app
from gis_api.settings import Settings
from layers.catalog import COLLECTIONS
from map_ui.overview import OverviewCache
from map_ui.register import find_grid, grid_register, open_problems
from tests.tiny_city import COMMUNITY, GRID_EAST, GRID_WEST


@pytest.fixture(scope="module")
def client(city_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=city_url, auth_public_reads=True))) as client:
        yield client


def config(html: str) -> str:
    found = re.search(r"civicMap\.configure\((.*?)\);</script>", html, re.S)
    assert found
    return found.group(1)


def test_the_map_is_chinese_by_default_and_english_on_request(client: TestClient) -> None:
    zh = client.get("/map")
    assert zh.status_code == 200 and zh.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in zh.text and "按编码查找" in zh.text
    for spec in COLLECTIONS:
        assert f'"name":"{spec.zh}"' in config(zh.text)
    en = client.get("/map", params={"lang": "en"})
    assert '<html lang="en">' in en.text and "Find by code" in en.text
    assert '"name":"Street lamps"' in config(en.text)


def test_bad_parameters_are_problems(client: TestClient) -> None:
    assert client.get("/map", params={"lang": "fr"}).status_code == 400
    assert client.get("/map", params={"zoom": "3"}).status_code == 400
    missing = client.get("/map/grids/999999999999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.get("/map/grids/999999999999999/print").status_code == 404


def test_the_grid_page_carries_the_grid_and_scopes_the_checks(client: TestClient) -> None:
    page = client.get(f"/map/grids/{GRID_WEST}")
    assert page.status_code == 200
    cfg = config(page.text)
    assert f'"scope":"grid:{GRID_WEST}"' in cfg
    assert f'"code":"{GRID_WEST}"' in cfg and "立新社区第1网格" in page.text
    assert f"/map/grids/{GRID_WEST}/print" in page.text
    community = config(client.get(f"/map/grids/{COMMUNITY}").text)
    assert f'"scope":"community:{COMMUNITY}"' in community


def test_the_register_lists_exactly_what_lies_in_the_grid(city_engine: Engine) -> None:
    with city_engine.connect() as conn:
        west = find_grid(conn, GRID_WEST)
        east = find_grid(conn, GRID_EAST)
        assert west is not None and east is not None
        assert west.officer == "王丹" and west.level == "grid"
        west_rows = grid_register(conn, west, "zh")
        east_rows = grid_register(conn, east, "zh")
    west_codes = {(r.layer, r.code) for r in west_rows.rows}
    east_codes = {(r.layer, r.code) for r in east_rows.rows}
    assert {c for layer, c in west_codes if layer == "street_lamps"} == {
        f"L-{i:04d}" for i in range(7)
    }
    assert {c for layer, c in east_codes if layer == "street_lamps"} == {
        f"L-{i:04d}" for i in range(7, 12)
    }
    for code in ("B-1", "SCH-1", "WJ-1", "S-1", "E-1"):
        assert code in {c for _, c in west_codes} and code not in {c for _, c in east_codes}
    for code in ("B-2", "V-1", "XQ-1", "BLD-1", "E-2"):
        assert code in {c for _, c in east_codes} and code not in {c for _, c in west_codes}
    assert west_rows.counts["street_lamps"] == 7
    unlit = next(r for r in west_rows.rows if r.code == "L-0003")
    assert unlit.value_label == "不亮" and unlit.color == "#424242"
    assert not west_codes & east_codes


def test_open_problems_are_the_checks_evidence_in_the_grid(city_engine: Engine) -> None:
    from layers.profile import load_profile

    profile = load_profile(None)
    with city_engine.connect() as conn:
        west = find_grid(conn, GRID_WEST)
        east = find_grid(conn, GRID_EAST)
    assert west is not None and east is not None
    west_problems = {r.id: r for r in open_problems(city_engine, profile, west).rules}
    east_problems = {r.id: r for r in open_problems(city_engine, profile, east).rules}
    lamps = west_problems["lamp-lighting-rate"].features
    assert [f["properties"]["code"] for f in lamps] == ["L-0003"]
    assert east_problems["lamp-lighting-rate"].features == []
    zone = east_problems["school-zones"].features
    assert [f["properties"]["venue_code"] for f in zone] == ["V-1"]
    assert west_problems["school-zones"].features == []


def test_the_print_sheet_holds_map_officer_register_and_problems(client: TestClient) -> None:
    sheet = client.get(f"/map/grids/{GRID_WEST}/print")
    assert sheet.status_code == 200
    html = sheet.text
    assert "一格一图" in html and "王丹" in html and GRID_WEST in html
    assert '"print":true' in config(html)
    rows = re.findall(r'<tr data-layer="(\w+)"><td>\d+</td><td>[^<]*</td><td>([^<]+)</td>', html)
    assert ("street_lamps", "L-0003") in rows and ("bins", "B-1") in rows
    assert len([r for r in rows if r[0] == "street_lamps"]) == 7
    problems = re.findall(
        r'<tr data-rule="([\w-]+)"><td>\d+</td><td>[^<]*</td><td>([^<]*)</td>', html
    )
    assert ("lamp-lighting-rate", "L-0003") in problems
    assert "不亮" in html  # the lamp's status label and the check's reason
    english = client.get(f"/map/grids/{GRID_WEST}/print", params={"lang": "en"}).text
    assert "Register of the grid" in english and "unlit" in english


def test_the_city_zoom_overview_has_one_point_per_grid_cell(client: TestClient) -> None:
    lamps = client.get("/map/overview/street_lamps")
    assert lamps.status_code == 200 and "max-age=60" in lamps.headers["cache-control"]
    cells = {f["properties"]["grid_code"]: f["properties"] for f in lamps.json()["features"]}
    # lamps: the worst status of the cell (west holds the unlit L-0003)
    assert cells == {
        GRID_WEST: {"grid_code": GRID_WEST, "count": 7, "status": "unlit"},
        GRID_EAST: {"grid_code": GRID_EAST, "count": 5, "status": "lit"},
    }
    bins = {
        f["properties"]["grid_code"]: f["properties"]
        for f in client.get("/map/overview/bins").json()["features"]
    }
    assert bins[GRID_WEST]["condition"] == "good" and bins[GRID_EAST]["condition"] == "damaged"
    point = next(f for f in lamps.json()["features"] if f["properties"]["grid_code"] == GRID_EAST)
    lon, lat = point["geometry"]["coordinates"]
    assert 129.6 < lon < 129.61 and 44.58 < lat < 44.59  # the centroid of its lamps
    assert client.get("/map/overview/roads").status_code == 404  # lines are tiled at every zoom
    assert client.get("/map/overview/nothing").status_code == 404


def test_browsers_get_the_overview_and_scripts_gzipped_and_others_as_they_are(
    client: TestClient,
) -> None:
    """A large city's overview is ~1 MB of JSON: browsers ask for gzip and get it (the tiny
    city's is under the 1 KB worth compressing, so the map's scripts stand in)."""
    for path in ("/map/static/civic/civic_map.js", "/map/static/leaflet/leaflet.js"):
        zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip", path
        assert "content-encoding" not in plain.headers, path
        assert zipped.content == plain.content  # httpx decodes: the same representation
        assert zipped.num_bytes_downloaded < plain.num_bytes_downloaded / 2, path


def test_a_stale_overview_is_answered_at_once_and_rebuilt_behind_it(
    city_url: str, city_engine: Engine
) -> None:
    """No city view waits for the aggregate once one exists: past its age the overview in
    hand is served while a background build picks up the new lamp."""
    spec = COLLECTIONS.get("street_lamps")
    cache = OverviewCache(ttl_s=0.0)
    first = cache.get(city_engine, spec)
    with city_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO street_lamps (code, status, geom) VALUES ('L-STALE', 'lit',"
                " ST_SetSRID(ST_MakePoint(129.6005, 44.5805), 4326))"
            )
        )
    try:
        assert cache.get(city_engine, spec) == first  # the stale one, without waiting
        deadline = time.monotonic() + 20
        while cache.get(city_engine, spec) == first:
            assert time.monotonic() < deadline, "the overview was never rebuilt"
            time.sleep(0.05)
        counts = sum(
            f["properties"]["count"] for f in orjson.loads(cache.get(city_engine, spec))["features"]
        )
        assert counts == 13  # the tiny city's 12 lamps and the new one
    finally:
        with city_engine.begin() as conn:
            conn.execute(text("DELETE FROM street_lamps WHERE code = 'L-STALE'"))
