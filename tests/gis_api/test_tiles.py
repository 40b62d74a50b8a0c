"""OGC API - Tiles as MVT on the real PostGIS with the tiny city, read back by GDAL's MVT driver.

Expected contents are computed independently of the SQL: from the tiny city's
coordinates, morecantile's WebMercatorQuad tile bounds and the documented buffer
and thinning rules.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import morecantile
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import Engine, text

from data.importer import import_file
from gis_api.app import create_app
from gis_api.settings import Settings
from layers import tiles
from layers.catalog import CATALOG, COLLECTIONS
from layers.profile import load_profile
from layers.school_zones import sync_zone_distances
from tests.conftest import truncate_layers
from tests.tiny_city import tiny_city, write_geojson

TMS = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"
BASE = "/collections/street_lamps/tiles/WebMercatorQuad"


@pytest.fixture(scope="module")
def city(
    session_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, gpd.GeoDataFrame]]:
    """The tiny city loaded once for this module (school zones included)."""
    truncate_layers(session_engine)
    sync_zone_distances(session_engine, load_profile(None))
    frames = tiny_city()
    folder = tmp_path_factory.mktemp("tiny_city")
    for spec in CATALOG:
        path = write_geojson(frames[spec.id], folder / f"{spec.id}.geojson")
        import_file(session_engine, path, spec)
    yield frames
    truncate_layers(session_engine)


@pytest.fixture(scope="module")
def client(database_url: str, city: dict[str, gpd.GeoDataFrame]) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(database_url=database_url, auth_public_reads=True))
    ) as client:
        yield client


# --- helpers -------------------------------------------------------------------------


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def decode(content: bytes, tile: morecantile.Tile, folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every layer of an MVT as lon/lat GeoJSON features, read by GDAL's MVT driver."""
    path = folder / f"{tile.z}-{tile.x}-{tile.y}.pbf"
    path.write_bytes(content)
    names = re.findall(r"^\d+: (\S+) \(", run("ogrinfo", "-ro", "-q", f"MVT:{path}"), re.M)
    # CLIP=NO: GDAL would otherwise drop what lies in the buffer around the tile.
    where = ["-oo", f"X={tile.x}", "-oo", f"Y={tile.y}", "-oo", f"Z={tile.z}", "-oo", "CLIP=NO"]
    layers = {}
    for name in names:
        out = run(
            "ogr2ogr",
            "-f",
            "GeoJSON",
            "/vsistdout/",
            *where,
            "-t_srs",
            "EPSG:4326",
            f"MVT:{path}",
            name,
        )
        layers[name] = json.loads(out)["features"]
    return layers


def buffered_bounds(tile: morecantile.Tile) -> tuple[float, float, float, float]:
    """The tile's EPSG:3857 box grown by the MVT buffer (64 of 4096 units)."""
    b = TMS.xy_bounds(tile)
    pad = (b.right - b.left) * tiles.BUFFER / tiles.EXTENT
    return b.left - pad, b.bottom - pad, b.right + pad, b.top + pad


def mercator(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.to_crs(3857)


def codes_in(frame: gpd.GeoDataFrame, tile: morecantile.Tile) -> set[str]:
    """Codes of the features a tile must hold: those meeting its buffered box."""
    area = box(*buffered_bounds(tile))
    return {
        code
        for code, geom in zip(frame.code, mercator(frame).geometry, strict=True)
        if geom.intersects(area)
    }


def lamp_tile(city: dict[str, gpd.GeoDataFrame], code: str, z: int) -> morecantile.Tile:
    lamps = city["street_lamps"]
    point = lamps.geometry[lamps.code == code].iloc[0]
    return TMS.tile(point.x, point.y, z)


def get_tile(client: TestClient, path: str, tile: morecantile.Tile) -> bytes:
    response = client.get(f"{path}/{tile.z}/{tile.x}/{tile.y}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    return bytes(response.content)


# --- full-zoom tiles -----------------------------------------------------------------


def test_a_z18_tile_holds_its_lamps_with_their_attributes_where_they_are(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    tile = lamp_tile(city, "L-0003", 18)
    layers = decode(get_tile(client, BASE, tile), tile, tmp_path)
    assert list(layers) == ["street_lamps"]
    features = {f["properties"]["code"]: f for f in layers["street_lamps"]}
    expected = codes_in(city["street_lamps"], tile)
    assert "L-0003" in expected and len(expected) >= 3
    assert set(features) == expected

    unlit = features["L-0003"]["properties"]
    assert unlit["status"] == "unlit"
    assert unlit["placement"] == "road" and unlit["light_distribution"] == "cut_off"
    assert unlit["pole_height_m"] == 10.0
    assert unlit["last_inspected"] == "2026-11-20T00:30:00Z"  # 08:30 Beijing time
    assert isinstance(unlit["id"], int) and unlit["mvt_id"] == unlit["id"]
    # Free text, references and the JSONB properties stay in the features API.
    for absent in ("component_code", "road_code", "properties", "count"):
        assert absent not in unlit
    lamps = city["street_lamps"].set_index("code")
    for code, feature in features.items():
        lon, lat = feature["geometry"]["coordinates"]
        assert abs(lon - lamps.geometry[code].x) < 1e-6  # MVT grid at z18: 4 cm
        assert abs(lat - lamps.geometry[code].y) < 1e-6


def test_z16_tiles_over_the_city_hold_every_lamp_exactly_once_per_tile(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    lamps = city["street_lamps"]
    covering = {TMS.tile(p.x, p.y, 16) for p in lamps.geometry}
    seen: set[str] = set()
    for tile in covering:
        features = decode(get_tile(client, BASE, tile), tile, tmp_path)["street_lamps"]
        codes = [f["properties"]["code"] for f in features]
        assert len(codes) == len(set(codes))
        assert set(codes) == codes_in(lamps, tile)
        seen |= set(codes)
    assert seen == set(lamps.code)


def test_the_all_layers_tile_holds_one_layer_per_collection_present(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    school = city["schools"].geometry.iloc[0].centroid
    tile = TMS.tile(school.x, school.y, 16)
    layers = decode(get_tile(client, "/tiles/WebMercatorQuad", tile), tile, tmp_path)
    expected = {layer for layer, frame in city.items() if codes_in(frame, tile)}
    expected.add("school_zones")  # 200 m around the school, derived in the database
    assert set(layers) == expected
    assert {"grids", "roads", "street_lamps", "schools", "school_zones"} <= set(layers)
    for layer, frame in city.items():
        if layer in layers:
            codes = {f["properties"]["code"] for f in layers[layer]}
            assert codes == codes_in(frame, tile), layer
    assert layers["schools"][0]["properties"]["school_type"] == "primary"
    assert layers["school_zones"][0]["properties"]["distance_m"] == 200.0
    # The same lamps as the single-layer tile.
    alone = decode(get_tile(client, BASE, tile), tile, tmp_path)["street_lamps"]
    assert sorted(f["properties"]["code"] for f in alone) == sorted(
        f["properties"]["code"] for f in layers["street_lamps"]
    )


def test_far_away_tiles_are_204_fast_and_the_queries_use_the_geom_indexes(
    client: TestClient, session_engine: Engine
) -> None:
    far = TMS.tile(-70.0, -30.0, 12)
    client.get(f"{BASE}/{far.z}/{far.x}/{far.y}")  # warm the pool
    for path in (BASE, "/tiles/WebMercatorQuad"):
        start = time.perf_counter()
        response = client.get(f"{path}/{far.z}/{far.x}/{far.y}")
        elapsed = time.perf_counter() - start
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["cache-control"] == "public, max-age=60"
        assert elapsed < 0.5, elapsed
    # Every layer's row filter is an index condition, thinned (z12) or not (z16).
    for z in (12, 16):
        tile = TMS.tile(129.6015, 44.5809, z)
        sql, params = tiles.tile_query(tuple(COLLECTIONS), tile.z, tile.x, tile.y)
        with session_engine.begin() as conn:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = json.dumps(
                conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).scalar_one()
            )
        for spec in COLLECTIONS:
            assert f"ix_{spec.table}_geom" in plan, (z, spec.id)
        assert "Seq Scan" not in plan


# --- HTTP behaviour ------------------------------------------------------------------


def test_etag_and_if_none_match_give_304(
    client: TestClient, city: dict[str, gpd.GeoDataFrame]
) -> None:
    tile = lamp_tile(city, "L-0000", 17)
    url = f"{BASE}/{tile.z}/{tile.x}/{tile.y}"
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["cache-control"] == "public, max-age=60"
    assert client.get(url).headers["etag"] == etag  # a content hash: stable

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    other = lamp_tile(city, "L-0011", 18)
    assert client.get(f"{BASE}/{other.z}/{other.x}/{other.y}").headers["etag"] != etag


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        (f"{BASE}/30/0/0", 404, "outside WebMercatorQuad"),
        (f"{BASE}/25/0/0", 404, "outside WebMercatorQuad"),
        (f"{BASE}/3/8/0", 404, "outside WebMercatorQuad"),
        (f"{BASE}/3/0/8", 404, "outside WebMercatorQuad"),
        (f"{BASE}/3/-1/0", 404, "outside WebMercatorQuad"),
        (f"{BASE}/3/0/99999999999999999999", 404, "outside WebMercatorQuad"),
        ("/tiles/WebMercatorQuad/30/0/0", 404, "outside WebMercatorQuad"),
        (f"{BASE}/a/0/0", 400, "z must be an integer"),
        (f"{BASE}/3/1.5/0", 400, "x must be an integer"),
        (f"{BASE}/3/0/0.pbf", 400, "y must be an integer"),
        ("/collections/lamps/tiles/WebMercatorQuad/3/0/0", 404, "unknown layer 'lamps'"),
        ("/collections/lamps/tiles", 404, "unknown layer 'lamps'"),
        ("/collections/street_lamps/tiles/WorldCRS84Quad/3/0/0", 404, "WorldCRS84Quad"),
        ("/tileMatrixSets/WorldCRS84Quad", 404, "WorldCRS84Quad"),
        (f"{BASE}/3/0/0?bbox=1,2,3,4", 400, "bbox"),
        (f"{BASE}?limit=5&foo=1", 400, "foo, limit"),
        ("/tiles?f=html", 400, "f: only 'json'"),
    ],
)
def test_bad_requests_are_problem_details(
    client: TestClient, path: str, status: int, words: str
) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and words in body["detail"]


# --- thinning ------------------------------------------------------------------------


def expected_cells(
    frame: gpd.GeoDataFrame, field: str, keys: tuple[str, ...], worst: bool, z: int
) -> dict[tuple[int, int], tuple[int, str]]:
    """Cell -> (count, summary) computed in Python from the documented rule."""
    cell = tiles.tile_width_m(z) / tiles.CELLS_PER_TILE
    groups: dict[tuple[int, int], list[str]] = {}
    for value, p in zip(frame[field], mercator(frame).geometry, strict=True):
        key = (int((p.x + tiles.WORLD_HALF) // cell), int((p.y + tiles.WORLD_HALF) // cell))
        groups.setdefault(key, []).append(value)
    result = {}
    for key, values in groups.items():
        if worst:
            summary = max(values, key=keys.index)
        else:
            counts = Counter(values)
            summary = min(counts, key=lambda v: (-counts[v], keys.index(v)))
        result[key] = (len(values), summary)
    return result


@pytest.mark.parametrize(
    ("layer", "field", "worst"),
    [
        ("street_lamps", "status", True),
        ("bins", "condition", True),
        ("entrances", "owner_layer", False),
    ],
)
def test_below_z14_points_are_cells_with_counts_and_the_worst_or_majority_value(
    client: TestClient,
    city: dict[str, gpd.GeoDataFrame],
    tmp_path: Path,
    layer: str,
    field: str,
    worst: bool,
) -> None:
    frame = city[layer]
    z = 12
    covering = {TMS.tile(p.x, p.y, z) for p in frame.geometry}
    assert len(covering) == 1  # the tiny city lies inside one z12 tile
    tile = covering.pop()
    response = client.get(f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{tile.x}/{tile.y}")
    features = decode(response.content, tile, tmp_path)[layer]
    keys = COLLECTIONS.get(layer).field(field).choice_keys()
    cells = expected_cells(frame, field, keys, worst, z)
    assert len(features) == len(cells)
    assert sum(f["properties"]["count"] for f in features) == len(frame)
    cell = tiles.tile_width_m(z) / tiles.CELLS_PER_TILE
    for f in features:
        props = {k: v for k, v in f["properties"].items() if v is not None and k != "mvt_id"}
        assert set(props) == {"count", field}
        x, y = TMS.xy(*f["geometry"]["coordinates"])
        key = (int((x + tiles.WORLD_HALF) // cell), int((y + tiles.WORLD_HALF) // cell))
        assert cells[key] == (props["count"], props[field])


def test_a_category_cell_shows_its_most_frequent_value(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], session_engine: Engine, tmp_path: Path
) -> None:
    # Two more compound gates next to E-2: compounds 3, schools 1 in the z12 cell.
    e2 = city["entrances"].geometry[city["entrances"].code == "E-2"].iloc[0]
    with session_engine.begin() as conn:
        for i in (3, 4):
            conn.execute(
                text(
                    "INSERT INTO entrances (code, owner_layer, owner_code, kind, geom) "
                    "VALUES (:code, 'compounds', 'XQ-1', 'side', "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                {"code": f"E-{i}", "x": e2.x + 0.0001 * i, "y": e2.y},
            )
    try:
        tile = TMS.tile(e2.x, e2.y, 12)
        url = f"/collections/entrances/tiles/WebMercatorQuad/12/{tile.x}/{tile.y}"
        (cell,) = decode(client.get(url).content, tile, tmp_path)["entrances"]
        assert cell["properties"]["count"] == 4
        assert cell["properties"]["owner_layer"] == "compounds"
    finally:
        with session_engine.begin() as conn:
            conn.execute(text("DELETE FROM entrances WHERE code IN ('E-3', 'E-4')"))


def test_lamps_are_thinned_at_z12_and_z13_and_single_from_z14(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    lamps = city["street_lamps"]
    for z in (12, 13, 14):
        covering = {TMS.tile(p.x, p.y, z) for p in lamps.geometry}
        features = [
            f
            for tile in covering
            for f in decode(get_tile(client, BASE, tile), tile, tmp_path)["street_lamps"]
        ]
        if z < tiles.THIN_BELOW_ZOOM:
            assert len(features) < len(lamps)
            worst = {f["properties"]["status"] for f in features}
            assert "unlit" in worst  # one unlit lamp is never outvoted
        else:
            assert sorted(f["properties"]["code"] for f in features) == sorted(lamps.code)


# --- metadata ------------------------------------------------------------------------


def test_tilejson_names_every_layer_and_its_template_resolves(
    client: TestClient, city: dict[str, gpd.GeoDataFrame]
) -> None:
    doc = client.get("/tiles/WebMercatorQuad/tilejson.json").json()
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    assert doc["minzoom"] == 0 and doc["maxzoom"] == tiles.MAX_ZOOM
    assert [layer["id"] for layer in doc["vector_layers"]] == list(COLLECTIONS.ids())
    assert str(tiles.THIN_BELOW_ZOOM) in doc["description"]
    for layer in doc["vector_layers"]:
        spec = COLLECTIONS.get(layer["id"])
        assert {"id", "code"} <= set(layer["fields"])
        if spec.style_field:
            assert layer["fields"][spec.style_field] == "String"
    west, south, east, north = doc["bounds"]
    for frame in city.values():
        minx, miny, maxx, maxy = frame.total_bounds
        assert west <= minx and south <= miny and maxx <= east and maxy <= north

    template = doc["tiles"][0]
    assert template.startswith("http://testserver/")
    tile = lamp_tile(city, "L-0005", 16)
    url = template.format(z=tile.z, x=tile.x, y=tile.y).removeprefix("http://testserver")
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == MVT

    lamps = client.get(f"{BASE}/tilejson.json").json()
    assert [layer["id"] for layer in lamps["vector_layers"]] == ["street_lamps"]
    fields = lamps["vector_layers"][0]["fields"]
    assert fields["count"] == "Number" and fields["pole_height_m"] == "Number"
    assert "component_code" not in fields
    minx, miny, maxx, maxy = city["street_lamps"].total_bounds
    assert lamps["bounds"] == pytest.approx([minx, miny, maxx, maxy], abs=1e-9)
    url = lamps["tiles"][0].format(z=tile.z, x=tile.x, y=tile.y)
    assert client.get(url.removeprefix("http://testserver")).status_code == 200


def test_ogc_tileset_links_lead_to_the_same_tile_with_column_and_row_by_name(
    client: TestClient, city: dict[str, gpd.GeoDataFrame], tmp_path: Path
) -> None:
    listing = client.get("/collections/street_lamps/tiles").json()
    (tileset_ref,) = listing["tilesets"]
    assert tileset_ref["dataType"] == "vector"
    assert tileset_ref["tileMatrixSetURI"] == TMS.uri
    self_link = next(link for link in tileset_ref["links"] if link["rel"] == "self")
    tileset = client.get(self_link["href"]).json()
    assert tileset["dataType"] == "vector" and tileset["crs"].endswith("/3857")
    assert [layer["id"] for layer in tileset["layers"]] == ["street_lamps"]
    assert tileset["layers"][0]["geometryDimension"] == 0
    assert "status" in tileset["layers"][0]["propertiesSchema"]["properties"]
    links = {link["rel"]: link for link in tileset["links"]}
    item = links["item"]
    assert item["type"] == MVT and item["templated"] is True
    tile = lamp_tile(city, "L-0007", 17)
    href = (
        item["href"]
        .replace("{tileMatrix}", str(tile.z))
        .replace("{tileRow}", str(tile.y))
        .replace("{tileCol}", str(tile.x))
    )
    via_template = client.get(href)
    assert via_template.status_code == 200
    assert via_template.content == get_tile(client, BASE, tile)

    scheme = client.get(links["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"])
    tms = scheme.json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) == 25
    # GDAL 3.6 reads the TMS 1.0 keys of the same document.
    path = tmp_path / "wmq.json"
    path.write_text(scheme.text)
    raster = tmp_path / "in.tif"
    run(
        "gdal_create",
        "-of",
        "GTiff",
        "-outsize",
        "4",
        "4",
        "-bands",
        "1",
        "-a_srs",
        "EPSG:4326",
        "-a_ullr",
        "129.5",
        "44.7",
        "129.7",
        "44.5",
        str(raster),
    )
    run(
        "gdal_translate",
        "-q",
        "-of",
        "COG",
        "-co",
        f"TILING_SCHEME={path}",
        str(raster),
        str(tmp_path / "out.tif"),
    )
    assert "Pseudo-Mercator" in run("gdalinfo", str(tmp_path / "out.tif"))

    sets = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    everything = client.get("/tiles/WebMercatorQuad").json()
    assert [layer["id"] for layer in everything["layers"]] == list(COLLECTIONS.ids())
    assert (
        client.get("/tiles")
        .json()["tilesets"][0]["links"][0]["href"]
        .endswith("/tiles/WebMercatorQuad")
    )


def test_tiles_carry_name_choices_numbers_and_dates_but_not_free_text() -> None:
    grids = {f.name for f in tiles.tile_fields(COLLECTIONS.get("grids"))}
    assert grids == {"level", "name", "households", "residents"}  # no officer or phone
    buildings = {f.name for f in tiles.tile_fields(COLLECTIONS.get("illegal_buildings"))}
    assert "owner" not in buildings and "address" not in buildings
    assert {"status", "discovered_on", "deadline"} <= buildings
