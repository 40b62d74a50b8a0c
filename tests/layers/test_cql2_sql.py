"""CQL2 filters run on a real PostGIS against the tiny city, with hand-computed answers.

Layout (tests/tiny_city.py, metres from the origin on EPSG:4552): lamps L-0000..L-0011 at
(15 + 30 i, 104), L-0003 unlit; school box x 20..80, y 130..190; café V-1 at (230, 160);
bins B-1 (on RD-1) and B-2 (no road); illegal building WJ-1 box 150..160 x 20..30 (100 m²).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, Point, box
from sqlalchemy import Engine, func, select, text

from data.importer import import_file
from gis_api.ogc.crs import ApiCrs, resolve
from layers.catalog import CATALOG, COLLECTIONS
from layers.cql2_sql import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT_CHARS,
    FilterError,
    filter_clause,
    parse_filter,
    queryables,
)
from layers.tables import table_of
from tests.conftest import truncate_layers
from tests.tiny_city import (
    COMMUNITY,
    DISTRICT,
    GRID_EAST,
    GRID_WEST,
    ORIGIN,
    STREET,
    tiny_city,
    wgs,
    write_geojson,
)

GK = 4552  # the tiny city's Gauss-Kruger zone (northing/easting axis order)
CRS84 = resolve(None, GK)
EPSG4326 = resolve("EPSG:4326", GK)  # lat/lon
EPSG4552 = resolve(f"EPSG:{GK}", GK)  # northing/easting
EPSG4552_XY = ApiCrs("urn:test:4552-easting-first", GK, swap_axes=False, geographic=False)
LAMPS = [f"L-{i:04d}" for i in range(12)]


@pytest.fixture(scope="module")
def city(session_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The tiny city loaded once for the module (no test here writes)."""
    truncate_layers(session_engine)
    folder: Path = tmp_path_factory.mktemp("tiny_city")
    for layer_id, gdf in tiny_city().items():
        path = write_geojson(gdf, folder / f"{layer_id}.geojson")
        import_file(session_engine, path, CATALOG.get(layer_id))
    yield session_engine
    truncate_layers(session_engine)


def codes(
    engine: Engine,
    layer_id: str,
    cql: str,
    lang: str | None = None,
    crs: ApiCrs = CRS84,
) -> list[str]:
    """Codes of the rows of a layer matching a filter, sorted."""
    spec = COLLECTIONS.get(layer_id)
    table = table_of(spec)
    clause = filter_clause(parse_filter(cql, lang), spec, table, crs)
    with engine.connect() as conn:
        return sorted(conn.execute(select(table.c.code).where(clause)).scalars())


def clause_sql(engine: Engine, layer_id: str, cql: str, crs: ApiCrs = CRS84) -> str:
    """The SQL text of a filter (parameters as placeholders, as sent to the server)."""
    spec = COLLECTIONS.get(layer_id)
    clause = filter_clause(parse_filter(cql, None), spec, table_of(spec), crs)
    return str(clause.compile(dialect=engine.dialect))


def refused(layer_id: str, cql: str, lang: str | None = None) -> str:
    """The FilterError message for a filter that must be refused."""
    spec = COLLECTIONS.get(layer_id)
    with pytest.raises(FilterError) as info:
        filter_clause(parse_filter(cql, lang), spec, table_of(spec), CRS84)
    return str(info.value)


def wkt(geom: Any, crs: ApiCrs = CRS84) -> str:
    """WKT of a geometry given in local metres, written in `crs` wire axis order."""
    geom = shapely.transform(geom, lambda xy: xy + ORIGIN) if crs.srid == GK else wgs(geom)
    if crs.swap_axes:
        geom = shapely.transform(geom, lambda xy: xy[:, ::-1])
    return str(shapely.to_wkt(geom, rounding_precision=-1))


def bbox(geom: Any, crs: ApiCrs = CRS84) -> str:
    """BBOX(...) of a geometry given in local metres, in `crs` wire axis order."""
    ring = shapely.from_wkt(wkt(geom, crs))
    return "BBOX({}, {}, {}, {})".format(*ring.bounds)


# ---------------------------------------------------------------------------
# Queryables


def test_queryables_is_a_closed_json_schema_of_the_whitelist() -> None:
    schema = queryables(COLLECTIONS.get("street_lamps"), "https://example.org/q")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://example.org/q"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert list(props) == [
        "id",
        "code",
        "component_code",
        "road_code",
        "placement",
        "pole_height_m",
        "light_distribution",
        "status",
        "last_inspected",
        "created_at",
        "updated_at",
        "geometry",
    ]
    assert props["status"]["enum"] == ["lit", "unlit", "damaged", "missing"]
    assert props["status"]["title"] == "状态"
    assert props["status"]["description"] == "status"
    assert props["pole_height_m"]["type"] == "number"
    assert props["last_inspected"] == {
        "title": "最近巡查",
        "description": "last inspected",
        "type": "string",
        "format": "date-time",
    }
    assert props["geometry"]["format"] == "geometry-point"
    assert "$id" not in queryables(COLLECTIONS.get("street_lamps"))


def test_queryables_cover_area_dates_lines_polygons_and_derived_layers() -> None:
    illegal = queryables(COLLECTIONS.get("illegal_buildings"))["properties"]
    assert illegal["area_m2"]["type"] == "number"
    assert illegal["deadline"]["format"] == "date"
    assert illegal["geometry"]["format"] == "geometry-multipolygon"
    roads = queryables(COLLECTIONS.get("roads"))["properties"]
    assert roads["geometry"]["format"] == "geometry-linestring"
    assert "area_m2" not in roads and "grid_id" not in roads and "properties" not in roads
    zones = queryables(COLLECTIONS.get("school_zones"))["properties"]
    assert zones["distance_m"]["type"] == "number"
    assert zones["school_type"]["enum"][0] == "kindergarten"
    assert queryables(COLLECTIONS.get("buildings"))["properties"]["floors"]["type"] == "integer"
    assert queryables(COLLECTIONS.get("signage"))["properties"]["fixed"]["type"] == "boolean"


# ---------------------------------------------------------------------------
# Attribute filters


@pytest.mark.parametrize(
    ("layer_id", "cql", "expected"),
    [
        ("street_lamps", "status = 'unlit'", ["L-0003"]),
        ("street_lamps", "'unlit' = status", ["L-0003"]),
        ("street_lamps", "status <> 'lit'", ["L-0003"]),
        ("street_lamps", "NOT (status = 'lit')", ["L-0003"]),
        ("street_lamps", "status IN ('unlit', 'damaged')", ["L-0003"]),
        ("street_lamps", "status NOT IN ('lit')", ["L-0003"]),
        ("street_lamps", "code IN ('L-0001', 'L-0005', 'L-9999')", ["L-0001", "L-0005"]),
        ("street_lamps", "code BETWEEN 'L-0002' AND 'L-0004'", ["L-0002", "L-0003", "L-0004"]),
        ("street_lamps", "code NOT BETWEEN 'L-0001' AND 'L-0010'", ["L-0000", "L-0011"]),
        ("street_lamps", "code > 'L-0009'", ["L-0010", "L-0011"]),
        # The parser makes 2310050110000003 a float; a TEXT column gets '2310050110000003'.
        ("street_lamps", "component_code = 2310050110000003", ["L-0003"]),
        ("street_lamps", "pole_height_m = 10", LAMPS),
        ("street_lamps", "pole_height_m > 10", []),
        ("street_lamps", "pole_height_m BETWEEN 9.5 AND 10.5", LAMPS),
        ("street_lamps", "status = 'unlit' OR code = 'L-0011'", ["L-0003", "L-0011"]),
        ("street_lamps", "status = 'unlit' AND code = 'L-0011'", []),
        ("street_lamps", "true", LAMPS),
        ("street_lamps", "false", []),
        # 08:30 at +08:00 is 00:30 UTC.
        ("street_lamps", "last_inspected = TIMESTAMP('2026-11-20T00:30:00Z')", LAMPS),
        ("street_lamps", "last_inspected > TIMESTAMP('2026-11-20T00:31:00Z')", []),
        ("street_lamps", "last_inspected = '2026-11-20T08:30:00+08:00'", LAMPS),
        ("street_lamps", "T_AFTER(last_inspected, TIMESTAMP('2026-11-20T00:29:00Z'))", LAMPS),
        ("street_lamps", "T_BEFORE(last_inspected, TIMESTAMP('2026-11-20T00:29:00Z'))", []),
        (
            "street_lamps",
            "T_INTERSECTS(last_inspected, INTERVAL('2026-11-20T00:30:00Z', '..'))",
            LAMPS,
        ),
        (
            "street_lamps",
            "T_DURING(last_inspected, INTERVAL('2026-11-20T00:30:00Z', '2026-11-21T00:00:00Z'))",
            [],
        ),
        (
            "street_lamps",
            "T_DISJOINT(last_inspected, INTERVAL('2026-11-21T00:00:00Z', '..'))",
            LAMPS,
        ),
        (
            "street_lamps",
            "created_at > TIMESTAMP('2000-01-01T00:00:00Z') AND status = 'unlit'",
            ["L-0003"],
        ),
        ("venues", "opened_on = DATE('2025-03-01')", ["V-1"]),
        ("venues", "opened_on = '2025-03-01'", ["V-1"]),
        ("venues", "opened_on > DATE('2025-03-01')", []),
        ("venues", "T_INTERSECTS(opened_on, INTERVAL('2025-01-01', '2025-12-31'))", ["V-1"]),
        ("venues", "T_DURING(opened_on, INTERVAL('2025-03-01', '2025-12-31'))", []),
        ("venues", "venue_type = 'internet_cafe' AND licence = 'WB-001'", ["V-1"]),
        (
            "illegal_buildings",
            "deadline < DATE('2026-11-01') AND discovered_on >= DATE('2026-10-01')",
            ["WJ-1"],
        ),
        ("illegal_buildings", "demolished_on IS NULL", ["WJ-1"]),
        ("illegal_buildings", "area_m2 BETWEEN 99 AND 101", ["WJ-1"]),
        ("illegal_buildings", "area_m2 > 101", []),
        ("bins", "road_code IS NULL", ["B-2"]),
        ("bins", "road_code IS NOT NULL", ["B-1"]),
        ("grids", "officer_phone IS NULL", sorted([DISTRICT, STREET, COMMUNITY, GRID_EAST])),
        ("grids", "name LIKE '立新社区第%网格'", [GRID_WEST, GRID_EAST]),
        ("grids", "name LIKE '立新社区第_网格'", [GRID_WEST, GRID_EAST]),
        ("grids", "name LIKE '%街道'", [STREET]),
        ("grids", "officer = '齐妍爽'", [GRID_EAST]),
        ("roads", "name LIKE '%长安%'", ["RD-2"]),
        ("roads", "road_class = 'back_street'", ["RD-2"]),
        ("venues", "CASEI(licence) LIKE CASEI('wb-%')", ["V-1"]),
        ("venues", "licence LIKE 'wb-%'", []),
        ("venues", "CASEI(licence) = CASEI('wb-001')", ["V-1"]),
        ("venues", "CASEI(licence) IN (CASEI('x'), CASEI('Wb-001'))", ["V-1"]),
        ("signage", "fixed", ["S-1"]),
        ("signage", "fixed = true", ["S-1"]),
        ("signage", "NOT fixed", []),
        ("signage", "fixed = false", []),
        ("compounds", "households = 120", ["XQ-1"]),
        ("compounds", "households > 119.5", ["XQ-1"]),
        ("compounds", "households = 120.5", []),
        ("buildings", "floors BETWEEN 5 AND 6 AND compound_code = 'XQ-1'", ["BLD-1"]),
        ("entrances", "owner_layer = 'schools'", ["E-1"]),
        ("bins", "kind = 'litter_bin' AND (condition = 'damaged' OR code = 'B-1')", ["B-1"]),
    ],
)
def test_attribute_filters_find_the_hand_computed_rows(
    city: Engine, layer_id: str, cql: str, expected: list[str]
) -> None:
    assert codes(city, layer_id, cql) == sorted(expected)


@pytest.mark.parametrize(
    ("layer_id", "cql", "cql_json"),
    [
        (
            "street_lamps",
            "status = 'unlit'",
            {"op": "=", "args": [{"property": "status"}, "unlit"]},
        ),
        (
            "street_lamps",
            "code BETWEEN 'L-0002' AND 'L-0004' AND NOT status IN ('unlit')",
            {
                "op": "and",
                "args": [
                    {"op": "between", "args": [{"property": "code"}, "L-0002", "L-0004"]},
                    {
                        "op": "not",
                        "args": [{"op": "in", "args": [{"property": "status"}, ["unlit"]]}],
                    },
                ],
            },
        ),
        (
            "venues",
            "CASEI(licence) LIKE CASEI('wb-%') AND opened_on = DATE('2025-03-01')",
            {
                "op": "and",
                "args": [
                    {
                        "op": "like",
                        "args": [
                            {"op": "casei", "args": [{"property": "licence"}]},
                            {"op": "casei", "args": ["wb-%"]},
                        ],
                    },
                    {"op": "=", "args": [{"property": "opened_on"}, {"date": "2025-03-01"}]},
                ],
            },
        ),
        (
            "compounds",
            "households = 120",
            {"op": "=", "args": [{"property": "households"}, 120]},
        ),
        (
            "bins",
            "road_code IS NULL",
            {"op": "isNull", "args": [{"property": "road_code"}]},
        ),
        (
            "street_lamps",
            f"S_DWITHIN(geometry, {wkt(Point(200, 104))}, 100)",
            {
                "op": "s_dwithin",
                "args": [
                    {"property": "geometry"},
                    shapely.geometry.mapping(wgs(Point(200, 104))),
                    100,
                    "meters",
                ],
            },
        ),
        (
            "street_lamps",
            f"S_INTERSECTS(geometry, {bbox(box(0, 90, 100, 120))})",
            {
                "op": "s_intersects",
                "args": [
                    {"property": "geometry"},
                    {"bbox": list(wgs(box(0, 90, 100, 120)).bounds)},
                ],
            },
        ),
    ],
)
def test_cql2_json_gives_the_same_rows_as_cql2_text(
    city: Engine, layer_id: str, cql: str, cql_json: dict[str, Any]
) -> None:
    from_text = codes(city, layer_id, cql)
    assert from_text
    assert codes(city, layer_id, json.dumps(cql_json), "cql2-json") == from_text


# ---------------------------------------------------------------------------
# Spatial filters


def lamps_within(centre: Point, metres: float) -> list[str]:
    """Lamps within `metres` of a local point, on the WGS-84 ellipsoid (as PostGIS geography)."""
    geod = Geod(ellps="WGS84")
    here = wgs(centre)
    found = []
    for i, code in enumerate(LAMPS):
        lamp = wgs(Point(15 + 30 * i, 104))
        _, _, distance = geod.inv(here.x, here.y, lamp.x, lamp.y)
        assert abs(distance - metres) > 1, "choose a distance away from ties"
        if distance <= metres:
            found.append(code)
    return found


def test_s_dwithin_finds_the_lamps_within_100_metres(city: Engine) -> None:
    # From (200, 104): lamps at x = 105..285 are 95, 65, 35, 5, 25, 55, 85 m away; 315 is 115 m.
    expected = ["L-0003", "L-0004", "L-0005", "L-0006", "L-0007", "L-0008", "L-0009"]
    assert lamps_within(Point(200, 104), 100) == expected
    here = wkt(Point(200, 104))
    assert codes(city, "street_lamps", f"S_DWITHIN(geometry, {here}, 100)") == expected
    assert codes(city, "street_lamps", f"S_DWITHIN(geometry, {here}, 100, meters)") == expected
    assert codes(city, "street_lamps", f"S_DWITHIN({here}, geometry, 100)") == expected
    assert codes(city, "street_lamps", f"S_DWITHIN(geometry, {here}, 30)") == ["L-0006", "L-0007"]


def test_s_dwithin_is_geodesic_around_the_school(city: Engine) -> None:
    # The café is 150 m from the campus box (tests/layers/test_spatial_index.py).
    school = wkt(box(20, 130, 80, 190))
    assert codes(city, "venues", f"S_DWITHIN(geometry, {school}, 149)") == []
    assert codes(city, "venues", f"S_DWITHIN(geometry, {school}, 151)") == ["V-1"]


@pytest.mark.parametrize(
    ("layer_id", "template", "expected"),
    [
        ("street_lamps", "S_INTERSECTS(geometry, {area})", ["L-0000", "L-0001", "L-0002"]),
        ("street_lamps", "S_WITHIN(geometry, {area})", ["L-0000", "L-0001", "L-0002"]),
        ("street_lamps", "S_CONTAINS({area}, geometry)", ["L-0000", "L-0001", "L-0002"]),
        ("street_lamps", "S_INTERSECTS(geometry, {area_bbox})", ["L-0000", "L-0001", "L-0002"]),
        ("street_lamps", "S_DISJOINT(geometry, {area})", LAMPS[3:]),
        ("street_lamps", "S_DWITHIN(geometry, {centre}, 100)", LAMPS[3:10]),
        ("street_lamps", "S_INTERSECTS(geometry, {area}) AND status = 'lit'", LAMPS[:3]),
        ("schools", "S_CONTAINS(geometry, {inside})", ["SCH-1"]),
        ("schools", "S_CONTAINS(geometry, {outside})", []),
        ("schools", "S_WITHIN(geometry, {campus_block})", ["SCH-1"]),
        ("schools", "S_WITHIN(geometry, {half_block})", []),
        ("schools", "S_INTERSECTS(geometry, {half_block})", ["SCH-1"]),
        ("roads", "S_CROSSES(geometry, {cut})", ["RD-2"]),
        ("roads", "S_INTERSECTS(geometry, {area_bbox})", ["RD-1"]),
        ("compounds", "S_INTERSECTS(geometry, {area})", []),
    ],
)
@pytest.mark.parametrize("crs", [CRS84, EPSG4326, EPSG4552, EPSG4552_XY], ids=lambda c: c.uri)
def test_spatial_filters_give_the_same_rows_in_every_filter_crs(
    city: Engine, layer_id: str, template: str, expected: list[str], crs: ApiCrs
) -> None:
    area = box(0, 90, 100, 120)  # lamps at x = 15, 45, 75; the next is at 105
    literals = {
        "area": wkt(area, crs),
        "area_bbox": bbox(area, crs),
        "centre": wkt(Point(200, 104), crs),
        "inside": wkt(Point(50, 160), crs),
        "outside": wkt(Point(100, 160), crs),
        "campus_block": wkt(box(0, 120, 100, 200), crs),
        "half_block": wkt(box(0, 120, 60, 200), crs),
        "cut": wkt(LineString([(250, 50), (350, 50)]), crs),
    }
    cql = template.format(**literals)
    assert codes(city, layer_id, cql, crs=crs) == sorted(expected)


def test_lat_lon_literals_really_are_read_lat_lon(city: Engine) -> None:
    """The same numbers in the other axis order are somewhere else (nothing is found)."""
    here_lonlat = wkt(Point(200, 104))
    assert (
        codes(city, "street_lamps", f"S_DWITHIN(geometry, {here_lonlat}, 100)", crs=EPSG4326) == []
    )
    here_latlon = wkt(Point(200, 104), EPSG4326)
    assert codes(city, "street_lamps", f"S_DWITHIN(geometry, {here_latlon}, 100)") == []


def test_the_literal_is_converted_never_the_column(city: Engine) -> None:
    cql = f"S_DWITHIN(geometry, {wkt(Point(200, 104), EPSG4552)}, 100)"
    sql = clause_sql(city, "street_lamps", cql, EPSG4552)
    assert sql.startswith("ST_DWithin(street_lamps.geog, CAST(ST_Transform(ST_SetSRID(")
    assert "ST_FlipCoordinates(ST_GeomFromGeoJSON(" in sql
    assert "street_lamps.geom" not in sql


def plan(engine: Engine, layer_id: str, cql: str) -> str:
    spec = COLLECTIONS.get(layer_id)
    table = table_of(spec)
    clause = filter_clause(parse_filter(cql, None), spec, table, CRS84)
    compiled = select(table.c.code).where(clause).compile(engine)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        rows = conn.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + compiled.string, compiled.params
        ).scalar_one()
    return json.dumps(rows)


def test_s_dwithin_uses_the_geography_index(city: Engine) -> None:
    here = wkt(Point(200, 104))
    dwithin = plan(city, "street_lamps", f"S_DWITHIN(geometry, {here}, 100)")
    assert "ix_street_lamps_geog" in dwithin
    intersects = plan(city, "street_lamps", f"S_INTERSECTS(geometry, {wkt(box(0, 90, 100, 120))})")
    assert "ix_street_lamps_geom" in intersects


# ---------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("layer_id", "cql", "named"),
    [
        ("street_lamps", "colour = 'red'", "'colour'"),
        ("street_lamps", "grid_id = 1", "'grid_id'"),
        ("street_lamps", "properties = 'x'", "'properties'"),
        ("street_lamps", "geog IS NULL", "'geog'"),
        ("street_lamps", "foo(status) = 'lit'", "'foo'"),
        ("street_lamps", "S_BUFFER(geometry, 3) = 1", "'s_buffer'"),
        ("street_lamps", "S_INTERSECTS(geometry, ENVELOPE(1, 2, 3, 4))", "ENVELOPE"),
        ("street_lamps", "ACCENTI(status) = ACCENTI('lit')", "ACCENTI"),
        ("street_lamps", "pole_height_m + 1 > 2", "'+'"),
        ("street_lamps", "A_CONTAINS(status, ('lit'))", "A_CONTAINS"),
        (
            "street_lamps",
            "T_CONTAINS(last_inspected, INTERVAL('2026-01-01T00:00:00Z', '..'))",
            "T_CONTAINS",
        ),
        ("street_lamps", "pole_height_m LIKE '1%'", "pole_height_m"),
        ("street_lamps", "last_inspected LIKE '2026%'", "last_inspected"),
        ("street_lamps", "status = 'unlitt'", "lit, unlit, damaged, missing"),
        ("street_lamps", "status IN ('lit', 'broken')", "'broken'"),
        ("street_lamps", "pole_height_m = 'tall'", "tall"),
        ("street_lamps", "pole_height_m = true", "true"),
        ("street_lamps", "status = NULL", "IS NULL"),
        ("street_lamps", "last_inspected > DATE('2026-01-01')", "TIMESTAMP"),
        ("street_lamps", "last_inspected > TIMESTAMP('2026-01-01')", "time zone"),
        ("street_lamps", "last_inspected > '2026-01-01T00:00:00'", "time zone"),
        ("venues", "opened_on = DATE('2025-02-30')", "2025-02-30"),
        ("venues", "opened_on = TIMESTAMP('2025-03-01T00:00:00Z')", "DATE"),
        ("street_lamps", "status", "'status'"),
        ("street_lamps", "geometry = 'x'", "spatial"),
        ("street_lamps", "S_INTERSECTS(status, POINT(1 2))", "geometry"),
        ("street_lamps", "S_DWITHIN(geometry, POINT(129.6 44.58), 100, feet)", "feet"),
        ("street_lamps", "S_DWITHIN(geometry, POINT(129.6 44.58), -1)", "-1"),
        ("street_lamps", "S_INTERSECTS(geometry, BBOX(3, 2, 1, 4))", "BBOX"),
        ("street_lamps", "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "invalid"),
        ("street_lamps", "S_INTERSECTS(geometry, POLYGON EMPTY)", "empty geometry"),
        ("street_lamps", "'lit' = 'lit'", "property"),
        ("street_lamps", "status = pole_height_m", "different types"),
        ("street_lamps", "CASEI(pole_height_m) = CASEI('x')", "pole_height_m"),
    ],
)
def test_bad_filters_are_refused_naming_the_culprit(layer_id: str, cql: str, named: str) -> None:
    assert named in refused(layer_id, cql)


def test_parse_errors_and_languages_are_short_clear_filter_errors() -> None:
    message = refused("street_lamps", "status = ")
    assert message.startswith("invalid cql2-text: at line 1 column 10")
    assert "\n" not in message
    assert "cql2-json" in refused("street_lamps", "{not json", "cql2-json")
    with pytest.raises(FilterError, match="'cql2-xml'"):
        parse_filter("status = 'lit'", "cql2-xml")
    assert parse_filter("status = 'lit'", "CQL2-TEXT") == parse_filter("status = 'lit'", None)


def test_a_bare_boolean_filter_is_still_an_object() -> None:
    assert parse_filter("TRUE", None) == {"op": "and", "args": [True]}
    assert parse_filter("false", "cql2-json") == {"op": "and", "args": [False]}


# ---------------------------------------------------------------------------
# Injection and denial of service


def test_an_injected_string_stays_a_value_and_the_table_stays(city: Engine) -> None:
    attack = "status = 'lit''; DROP TABLE street_lamps; --'"
    assert "has no value" in refused("street_lamps", attack)
    roads_attack = "name = 'x''; DROP TABLE roads; --' OR name LIKE '%''; DELETE FROM roads; --'"
    assert "DROP" not in clause_sql(city, "roads", roads_attack)
    assert "DELETE" not in clause_sql(city, "roads", roads_attack)
    assert codes(city, "roads", roads_attack) == []
    with city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM street_lamps")).scalar_one() == 12
        assert conn.execute(text("SELECT count(*) FROM roads")).scalar_one() == 2


def test_an_injected_property_name_is_refused(city: Engine) -> None:
    message = refused("street_lamps", "\"status; DROP TABLE x\" = 'lit'")
    assert "'status; DROP TABLE x'" in message
    hostile = {"op": "=", "args": [{"property": 'code" = code; DROP TABLE roads; --'}, "x"]}
    assert "unknown property" in refused("roads", json.dumps(hostile), "cql2-json")
    with city.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(table_of(CATALOG.get("roads")))
            ).scalar_one()
            == 2
        )


@pytest.mark.parametrize(
    "cql",
    [
        "(" * (MAX_DEPTH + 10) + "status = 'lit'" + ")" * (MAX_DEPTH + 10),
        # Sizes that overflow the Rust parser's stack (a segfault) if it ever saw them.
        "(" * 2000 + "status = 'lit'" + ")" * 2000,
        "NOT " * 5000 + "status = 'lit'",
        "pole_height_m = " + "-" * 5000 + "1",
        "pole_height_m = " + " + ".join(["1"] * 20_000),
        " AND ".join(["status = 'lit'"] * 20_000),
        "status IN (" + ", ".join(["'lit'"] * (2 * MAX_NODES)) + ")",
        "name = '" + "x" * MAX_TEXT_CHARS + "'",
    ],
    ids=["deep", "deeper", "nots", "negations", "sum", "long-and", "long-in", "long-text"],
)
def test_huge_or_deep_text_filters_are_refused(cql: str) -> None:
    with pytest.raises(FilterError, match=r"nested deeper|more than|longer than"):
        parse_filter(cql, None)


def test_huge_or_deep_json_filters_are_refused() -> None:
    deep: dict[str, Any] = {"op": "=", "args": [{"property": "status"}, "lit"]}
    for _ in range(MAX_DEPTH + 5):
        deep = {"op": "not", "args": [deep]}
    with pytest.raises(FilterError, match="nested deeper"):
        parse_filter(json.dumps(deep), "cql2-json")
    spec = COLLECTIONS.get("street_lamps")
    # An AST built by hand (not via parse_filter) is checked too.
    with pytest.raises(FilterError, match="nested deeper"):
        filter_clause(deep, spec, table_of(spec), CRS84)
    wide = {"op": "in", "args": [{"property": "code"}, ["x"] * (2 * MAX_NODES)]}
    with pytest.raises(FilterError, match="more than"):
        parse_filter(json.dumps(wide), "cql2-json")
    very_deep = "[" * 5000 + "]" * 5000
    with pytest.raises(FilterError):
        parse_filter(very_deep, "cql2-json")


def test_reasonable_nesting_is_accepted(city: Engine) -> None:
    cql = "(" * 10 + "NOT NOT (status = 'unlit')" + ")" * 10
    assert codes(city, "street_lamps", cql) == ["L-0003"]
