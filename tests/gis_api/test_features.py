"""OGC API Features over the tiny city: what a planner's GIS client asks, and the answers.

Layout (tests/tiny_city.py): 12 lamps L-0000..L-0011 at x = 15 + 30 i, y = 104 m on
road RD-1; L-0003 unlit; west grid x 0..200, east grid x 200..400; one school
SCH-1 (box 20..80 x 130..190 m) and an internet café V-1 150 m from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Point, box
from sqlalchemy import Engine, text

from data.importer import import_file
from gis_api.app import create_app
from gis_api.database import ReadPool
from gis_api.settings import Settings
from layers.catalog import CATALOG, COLLECTIONS
from tests.tiny_city import GRID_EAST, GRID_WEST, ORIGIN, tiny_city, wgs, write_geojson

LAMPS = "/collections/street_lamps/items"


@pytest.fixture(scope="module")
def city_engine(session_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The tiny city loaded once for this module's read-only tests."""
    from tests.conftest import truncate_layers

    truncate_layers(session_engine)
    folder = tmp_path_factory.mktemp("tiny")
    city = tiny_city()
    for spec in CATALOG:
        import_file(
            session_engine, write_geojson(city[spec.id], folder / f"{spec.id}.geojson"), spec
        )
    return session_engine


@pytest.fixture(scope="module")
def client(database_url: str, city_engine: Engine) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(database_url=database_url, auth_public_reads=True))
    ) as client:
        yield client


def codes(body: dict[str, Any]) -> list[str]:
    return [f["properties"]["code"] for f in body["features"]]


def get_json(client: TestClient, url: str, **params: Any) -> dict[str, Any]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(client: TestClient, url: str, status: int = 400, /, **params: str) -> str:
    response = client.get(url, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    return detail


# --- landing, conformance, API description -------------------------------------------


def test_a_gis_client_finds_the_api_from_the_landing_page(client: TestClient) -> None:
    landing = get_json(client, "/", f="json")
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert {"service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert client.get(rels["service-desc"]).json()["paths"]["/collections/{layer}/items"]
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert "text/html" in browser.headers["content-type"] and "路灯" in browser.text
    conformance = get_json(client, "/conformance")["conformsTo"]
    for part in (
        "features-1/1.0/conf/core",
        "features-2/1.0/conf/crs",
        "features-3/1.0/conf/filter",
    ):
        assert any(part in c for c in conformance)


def test_the_api_docs_page_loads_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/api.html")
    assert page.status_code == 200
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200


# --- collections ------------------------------------------------------------------------


def test_every_layer_and_the_school_zones_are_collections_with_their_extent(
    client: TestClient,
) -> None:
    body = get_json(client, "/collections")
    ids = [c["id"] for c in body["collections"]]
    assert ids == list(COLLECTIONS.ids())
    lamps = next(c for c in body["collections"] if c["id"] == "street_lamps")
    assert lamps["title"] == "路灯"
    west, south, east, _ = lamps["extent"]["spatial"]["bbox"][0]
    first, last = wgs(Point(15, 104)), wgs(Point(345, 104))
    assert west == pytest.approx(first.x, abs=1e-9) and east == pytest.approx(last.x, abs=1e-9)
    assert south == pytest.approx(min(first.y, last.y), abs=1e-9)
    english = get_json(client, "/collections/street_lamps", lang="en")
    assert english["title"] == "Street lamps"


def test_an_unknown_collection_is_a_404_naming_the_known_ones(client: TestClient) -> None:
    detail = problem(client, "/collections/lamps", 404)
    assert "lamps" in detail and "street_lamps" in detail
    problem(client, "/collections/lamps/items", 404)


def test_queryables_describe_choices_with_their_keys(client: TestClient) -> None:
    schema = get_json(client, "/collections/street_lamps/queryables")
    status = schema["properties"]["status"]
    assert set(status["enum"]) == {"lit", "unlit", "damaged", "missing"}
    assert schema["$id"].endswith("/collections/street_lamps/queryables")


# --- items: paging, limits, unknown parameters -------------------------------------------


def test_paging_through_a_layer_with_next_links_loses_and_repeats_nothing(
    client: TestClient,
) -> None:
    seen: list[str] = []
    url: str | None = f"{LAMPS}?limit=5"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == 12
        assert body["numberReturned"] == len(body["features"])
        seen += codes(body)
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"L-{i:04d}" for i in range(12)] and len(set(seen)) == 12
    last = get_json(client, LAMPS, limit=5, offset=10)
    assert any(link["rel"] == "prev" for link in last["links"])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"colour": "red"}, "colour"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "130,45,129,44"}, "bbox"),
        ({"bbox": "1,2,3,x"}, "bbox"),
        ({"crs": "EPSG:32652"}, "crs"),
        ({"bbox": "129,44,130,45", "bbox-crs": "EPSG:9999"}, "bbox-crs"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"properties": "code,colour"}, "colour"),
        ({"sortby": "colour"}, "colour"),
        ({"sortby": "code;DROP TABLE street_lamps"}, "DROP"),
        ({"filter-lang": "cql2-text"}, "filter"),
        ({"pole_height_m": "tall"}, "pole_height_m"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(
    client: TestClient, params: dict[str, str], named: str
) -> None:
    assert named in problem(client, LAMPS, **params)


def test_a_repeated_parameter_is_refused(client: TestClient) -> None:
    response = client.get(f"{LAMPS}?limit=5&limit=6")
    assert response.status_code == 400 and "limit" in response.json()["detail"]


def test_formats_other_than_json_and_html_are_not_acceptable(client: TestClient) -> None:
    assert client.get(LAMPS, params={"f": "xml"}).status_code == 406
    assert client.get(LAMPS, headers={"Accept": "application/xml"}).status_code == 406


# --- bbox and CRS (Part 2) ---------------------------------------------------------------


def _west_grid_bbox() -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = wgs(box(0, 0, 199, 200)).bounds
    return minx, miny, maxx, maxy


def test_a_bbox_over_the_west_grid_finds_its_seven_lamps(client: TestClient) -> None:
    minx, miny, maxx, maxy = _west_grid_bbox()
    body = get_json(client, LAMPS, bbox=f"{minx},{miny},{maxx},{maxy}")
    assert sorted(codes(body)) == [f"L-{i:04d}" for i in range(7)]


def test_a_lamp_a_hair_outside_the_bbox_is_not_in_it(client: TestClient) -> None:
    lamp = wgs(Point(15, 104))  # L-0000
    # A box ending 1e-7 degree (1 cm) west of the lamp: float4 index boxes would take it.
    west = f"{lamp.x - 0.01},{lamp.y - 0.01},{lamp.x - 1e-7},{lamp.y + 0.01}"
    assert get_json(client, LAMPS, bbox=west)["numberMatched"] == 0
    touching = f"{lamp.x - 0.01},{lamp.y - 0.01},{lamp.x},{lamp.y + 0.01}"
    assert codes(get_json(client, LAMPS, bbox=touching)) == ["L-0000"]


def test_a_bbox_edge_counts_exactly_however_close_a_lamp_is(client: TestClient) -> None:
    # Boxes this wide are split into an inner box answered by the index alone and an
    # edge band where coordinates are compared (gis_api/ogc/params.bbox_clauses). Put
    # each edge on a lamp, and inside or outside it by less than a float4 step of the
    # index (~1e-5 degree here), by about one, and by more than the band is wide.
    lamps = [wgs(Point(15 + 30 * i, 104)) for i in range(12)]
    for offset in (0.0, 1e-9, -1e-9, 1e-7, -1e-7, 6e-6, -6e-6, 1.2e-4, -1.2e-4, 3e-4, -3e-4):
        for lamp in (lamps[0], lamps[5], lamps[11]):
            x, y = lamp.x, lamp.y
            for box_ in (
                (x + offset, y - 0.01, x + 0.01, y + 0.01),
                (x - 0.01, y - 0.01, x + offset, y + 0.01),
                (x - 0.01, y + offset, x + 0.01, y + 0.01),
                (x - 0.01, y - 0.01, x + 0.01, y + offset),
            ):
                west, south, east, north = box_
                inside = sorted(
                    f"L-{i:04d}"
                    for i, p in enumerate(lamps)
                    if west <= p.x <= east and south <= p.y <= north
                )
                body = get_json(client, LAMPS, bbox=",".join(map(repr, box_)))
                assert body["numberMatched"] == len(inside), (offset, box_)
                assert sorted(codes(body)) == inside, (offset, box_)


def test_a_bbox_in_the_city_gauss_kruger_zone_and_a_bbox_over_polygons(
    client: TestClient,
) -> None:
    # EPSG:4552 is northing,easting; local metres x 20..180, y 20..180 hold L-0001..L-0005.
    east, north = ORIGIN
    gk = f"{north + 20},{east + 20},{north + 180},{east + 180}"
    uri = "http://www.opengis.net/def/crs/EPSG/0/4552"
    body = get_json(client, LAMPS, bbox=gk, **{"bbox-crs": uri})
    assert sorted(codes(body)) == [f"L-{i:04d}" for i in range(1, 6)]
    assert body["numberMatched"] == 5
    minx, miny, maxx, maxy = wgs(box(20, 20, 180, 180)).bounds
    grids = codes(get_json(client, "/collections/grids/items", bbox=f"{minx},{miny},{maxx},{maxy}"))
    assert GRID_WEST in grids and GRID_EAST not in grids


def test_paging_through_a_bbox_sorted_by_a_property(client: TestClient) -> None:
    minx, miny, maxx, maxy = _west_grid_bbox()
    seen: list[str] = []
    url: str | None = f"{LAMPS}?bbox={minx},{miny},{maxx},{maxy}&sortby=-code&limit=3"
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == 7
        assert body["numberReturned"] == len(body["features"])
        seen += codes(body)
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert seen == [f"L-{i:04d}" for i in range(6, -1, -1)]
    beyond = get_json(client, LAMPS, bbox=f"{minx},{miny},{maxx},{maxy}", offset=20)
    assert (beyond["numberMatched"], beyond["numberReturned"], beyond["features"]) == (7, 0, [])
    empty = get_json(client, LAMPS, offset=50)
    assert (empty["numberMatched"], empty["numberReturned"], empty["features"]) == (12, 0, [])


def test_a_bbox_in_epsg_4326_is_read_latitude_first(client: TestClient) -> None:
    minx, miny, maxx, maxy = _west_grid_bbox()
    uri = "http://www.opengis.net/def/crs/EPSG/0/4326"
    body = get_json(client, LAMPS, bbox=f"{miny},{minx},{maxy},{maxx}", **{"bbox-crs": uri})
    assert len(body["features"]) == 7
    # lon,lat sent where lat,lon is due: latitude 129 is impossible, and the answer says why.
    swapped = problem(client, LAMPS, bbox=f"{minx},{miny},{maxx},{maxy}", **{"bbox-crs": uri})
    assert "lat,lon" in swapped


def test_output_in_epsg_4326_gives_latitude_first_and_says_so(client: TestClient) -> None:
    response = client.get(
        LAMPS, params={"crs": "http://www.opengis.net/def/crs/EPSG/0/4326", "code": "L-0000"}
    )
    assert response.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    lat, lon = response.json()["features"][0]["geometry"]["coordinates"]
    expected = wgs(Point(15, 104))
    assert (lon, lat) == (pytest.approx(expected.x, abs=1e-9), pytest.approx(expected.y, abs=1e-9))
    default = client.get(LAMPS, params={"code": "L-0000"})
    assert default.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    assert default.json()["features"][0]["geometry"]["coordinates"][0] == pytest.approx(lon)


def test_output_in_the_city_gauss_kruger_zone_is_northing_easting_metres(
    client: TestClient,
) -> None:
    body = get_json(client, LAMPS, crs="http://www.opengis.net/def/crs/EPSG/0/4552", code="L-0001")
    northing, easting = body["features"][0]["geometry"]["coordinates"]
    point = wgs(Point(45, 104))
    e, n = Transformer.from_crs("EPSG:4326", "EPSG:4552", always_xy=True).transform(
        point.x, point.y
    )
    assert easting == pytest.approx(e, abs=0.001) and northing == pytest.approx(n, abs=0.001)
    mercator = get_json(client, LAMPS, crs="EPSG:3857", code="L-0001")
    x, _ = mercator["features"][0]["geometry"]["coordinates"]
    assert x == pytest.approx(
        Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(point.x, point.y)[
            0
        ],
        abs=0.001,
    )


# --- properties, sorting, datetime, equality ---------------------------------------------


def test_properties_selection_and_sorting(client: TestClient) -> None:
    body = get_json(client, LAMPS, properties="code,status", sortby="-code", limit=3)
    assert codes(body) == ["L-0011", "L-0010", "L-0009"]
    assert set(body["features"][0]["properties"]) == {"code", "status"}
    by_status = get_json(client, LAMPS, sortby="+status,-code", limit=1)
    assert codes(by_status) == ["L-0011"]  # 'lit' < 'unlit'; then code descending


def test_datetime_filters_on_the_last_inspection(client: TestClient) -> None:
    # Every lamp was inspected 2026-11-20 08:30 Beijing time = 00:30 UTC.
    assert get_json(client, LAMPS, datetime="2026-11-20")["numberMatched"] == 12
    assert get_json(client, LAMPS, datetime="2026-11-20T00:30:00Z")["numberMatched"] == 12
    assert get_json(client, LAMPS, datetime="../2026-11-19T23:59:59Z")["numberMatched"] == 0
    assert get_json(client, LAMPS, datetime="2026-11-01T00:00:00Z/..")["numberMatched"] == 12


def test_a_property_as_a_query_parameter_filters_by_equality(client: TestClient) -> None:
    assert codes(get_json(client, LAMPS, status="unlit")) == ["L-0003"]
    assert get_json(client, LAMPS, pole_height_m="10")["numberMatched"] == 12


# --- CQL2 (Part 3) -----------------------------------------------------------------------


def test_a_cql2_text_and_json_filter_find_the_unlit_lamp(client: TestClient) -> None:
    assert codes(get_json(client, LAMPS, filter="status = 'unlit'")) == ["L-0003"]
    as_json = '{"op": "=", "args": [{"property": "status"}, "unlit"]}'
    assert codes(get_json(client, LAMPS, filter=as_json, **{"filter-lang": "cql2-json"})) == [
        "L-0003"
    ]


def test_lamps_within_100_m_of_the_school_gate_by_s_dwithin(client: TestClient) -> None:
    gate = wgs(Point(50, 130))  # school's south side; lamps at y = 104 (26 m south)
    body = get_json(client, LAMPS, filter=f"S_DWITHIN(geometry, POINT({gate.x} {gate.y}), 100)")
    # Horizontal offsets |15 + 30 i - 50| with sqrt(dx² + 26²) <= 100: i = 0..4 (dx <= 96.5).
    assert sorted(codes(body)) == [f"L-{i:04d}" for i in range(5)]


def test_an_unknown_property_in_a_filter_is_named(client: TestClient) -> None:
    assert "colour" in problem(client, LAMPS, filter="colour = 'red'")


def test_an_injection_in_the_filter_is_refused_and_the_table_survives(
    client: TestClient, city_engine: Engine
) -> None:
    response = client.get(LAMPS, params={"filter": "status = 'lit'; DROP TABLE street_lamps; --"})
    assert response.status_code == 400
    response = client.get(LAMPS, params={"filter": "status = 'x'' OR ''1''=''1'"})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["numberMatched"] == 0
    with city_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM street_lamps")).scalar_one() == 12


# --- single items and HTML ----------------------------------------------------------------


def test_a_single_lamp_with_its_etag_and_its_html_page(client: TestClient) -> None:
    first = get_json(client, LAMPS, code="L-0003")["features"][0]
    response = client.get(f"{LAMPS}/{first['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.headers["ETag"].endswith('-v1"')
    assert response.json()["properties"]["status"] == "unlit"
    page = client.get(f"{LAMPS}/{first['id']}", params={"f": "html"})
    assert "状态" in page.text and "L-0003" in page.text
    english = client.get(f"{LAMPS}/{first['id']}", params={"f": "html", "lang": "en"}).text
    assert "<th>status</th>" in english and "状态" not in english


def test_an_unknown_or_malformed_id_is_a_404(client: TestClient) -> None:
    problem(client, f"{LAMPS}/999999", 404)
    problem(client, f"{LAMPS}/abc", 404)


def test_an_items_page_in_html_lists_the_lamps_in_chinese(client: TestClient) -> None:
    page = client.get(LAMPS, params={"f": "html", "limit": 20})
    assert page.status_code == 200 and "L-0011" in page.text and "路灯" in page.text


def test_the_school_zone_collection_holds_the_200_m_zone(client: TestClient) -> None:
    body = get_json(client, "/collections/school_zones/items")
    assert codes(body) == ["SCH-1"]
    assert body["features"][0]["properties"]["distance_m"] == 200.0
    cafe = wgs(Point(230, 160))
    inside = get_json(
        client,
        "/collections/school_zones/items",
        filter=f"S_INTERSECTS(geometry, POINT({cafe.x} {cafe.y}))",
    )
    assert codes(inside) == ["SCH-1"]


# --- the async read connections (single items and tiles) ---------------------------------


def test_a_read_connection_whose_statement_failed_is_closed_not_reused(database_url: str) -> None:
    async def scenario() -> None:
        pool = ReadPool(database_url, size=1)
        async with pool.connection() as conn:
            first = conn
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with pool.connection() as conn:
                assert conn is first  # idle connections are reused
                await conn.execute("SELECT * FROM no_such_table")
        assert first.closed
        async with pool.connection() as conn:
            assert conn is not first
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
        await pool.close()

    asyncio.run(scenario())


def test_a_request_cancelled_mid_query_frees_its_read_connection(database_url: str) -> None:
    async def scenario() -> None:
        pool = ReadPool(database_url, size=1)
        started = asyncio.Event()

        async def slow() -> None:
            async with pool.connection() as conn:
                started.set()
                await conn.execute("SELECT pg_sleep(3)")

        task = asyncio.create_task(slow())
        await started.wait()
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(5):  # the one slot is free again
            async with pool.connection() as conn:
                assert await (await conn.execute("SELECT 2")).fetchone() == (2,)
        await pool.close()

    asyncio.run(scenario())
