"""Point layers encoded by `layers._mvt_points` give the bytes PostGIS's `ST_AsMVT` gives.

A probe layer holds every kind of tile attribute and the awkward values (NULLs, negative
ids and numbers, -0.0, NaN, BC and far-future dates, infinity, Chinese text, one string
under two keys) on points scattered over a few z14-z22 tiles and placed on the rounding
ties and the buffer's edges; every tile over them, encoded here, must equal byte for byte
the tile `ST_AsMVT(ST_AsMVTGeom(ST_Transform(geom, 3857), ...))` builds from the same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import morecantile
import psycopg
import pytest
from sqlalchemy import Engine, text

from layers import tiles
from layers._mvt_points import PointLayer, libpq_version
from layers.catalog import Choice, FieldKind, GeometryKind, LayerField, LayerSpec

TMS = morecantile.tms.get("WebMercatorQuad")

PROBE = LayerSpec(
    id="mvt_probe",
    zh="探针",
    en="Probe",
    geometry=GeometryKind.POINT,
    code_prefix="PRB",
    fields=(
        LayerField("name", FieldKind.TEXT, "名称", "name"),
        LayerField(
            "kind",
            FieldKind.CHOICE,
            "类型",
            "kind",
            choices=(Choice("road", "道路", "road"), Choice("park", "公园", "park")),
        ),
        LayerField("count", FieldKind.INTEGER, "数量", "count"),
        LayerField("height", FieldKind.FLOAT, "高度", "height"),
        LayerField("fixed", FieldKind.BOOLEAN, "固定", "fixed"),
        LayerField("opened", FieldKind.DATE, "开业", "opened"),
        LayerField("seen", FieldKind.DATETIME, "巡查", "seen"),
        LayerField("note", FieldKind.TEXT, "备注", "note"),  # free text: not in tiles
    ),
)

REFERENCE = """
SELECT ST_AsMVT(q, 'mvt_probe', 4096, 'geom', 'fid') FROM (
  SELECT t.id AS fid, t.id AS id, t.code AS code, t.name AS name, t.kind AS kind,
         t.count AS count, t.height AS height, t.fixed AS fixed,
         to_char(t.opened, 'YYYY-MM-DD') AS opened,
         to_char(t.seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS seen,
         ST_AsMVTGeom(ST_Transform(t.geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true)
           AS geom
  FROM mvt_probe AS t
  WHERE t.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326)
) AS q
"""
"""The tile as a PostGIS user writes it (dates as text the way the catalog shows them)."""

HOME = TMS.tile(129.6015, 44.5809, 16)
"""The z16 tile the tie and edge points are placed on."""

DATES = [
    None,
    "2024-02-29",
    "2000-01-01",
    "1999-12-31",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "0044-03-15 BC",
    "infinity",
    "-infinity",
]
DATETIMES = [
    None,
    "2026-11-27 20:45:59.999999+00",
    "2000-01-01 00:00:00+00",
    "1999-12-31 23:59:59.5+00",
    "1969-07-20 20:17:40.25+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "10000-01-01 00:00:00+00",
    "0044-03-15 12:00:00+00 BC",
    "infinity",
    "-infinity",
    "2024-02-29 08:00:00+08",
]
NAMES = [None, "", "road", "人民路 12 号", "park", "网吧 «星空»"]
HEIGHTS = [None, 0.0, -0.0, 7.5, -3.25, 1e300, float("nan"), float("inf"), 9.0]
COUNTS = [None, 0, 1, -1, 2147483647, -2147483648, 127, 128]


def lon_lat(tile: morecantile.Tile, u: float, v: float) -> tuple[float, float]:
    """The lon/lat of tile coordinates (u, v) (0-4096 across, from the top-left)."""
    b = TMS.xy_bounds(tile)
    x = b.left + (b.right - b.left) * u / tiles.EXTENT
    y = b.top - (b.top - b.bottom) * v / tiles.EXTENT
    lon = math.degrees(x / tiles.EARTH_RADIUS)
    lat = math.degrees(math.atan(math.sinh(y / tiles.EARTH_RADIUS)))
    return lon, lat


def probe_rows() -> list[dict[str, object]]:
    rng = random.Random(20261127)
    points: list[tuple[float, float]] = []
    # Rounding ties and the buffer's edges (-64 and 4160) of the home tile, both axes.
    edges = [-65.5, -64.5, -64.0, -63.5, 0.5, 2048.5, 4095.5, 4160.0, 4160.5, 4161.5]
    points += [lon_lat(HOME, u, v) for u in edges for v in (100.0, 2047.5)]
    points += [lon_lat(HOME, u, v) for u in (300.0, 3000.5) for v in edges]
    # Scattered points over the home tile's z14 parent and beyond it.
    west, south, east, north = TMS.bounds(TMS.parent(HOME, zoom=14)[0])
    pad = (east - west) / 4
    points += [
        (rng.uniform(west - pad, east + pad), rng.uniform(south - pad, north + pad))
        for _ in range(500)
    ]
    rows = []
    for i, (lon, lat) in enumerate(points):
        kind = rng.choice([None, "road", "park"])
        rows.append(
            {
                "id": -i if i % 97 == 5 else i + 1,
                "code": f"PRB-{i:05d}" if i % 11 else "road",  # also a value of `kind`
                "name": rng.choice(NAMES),
                "kind": kind,
                "count": rng.choice(COUNTS),
                "height": rng.choice(HEIGHTS),
                "fixed": rng.choice([None, True, False]),
                "opened": rng.choice(DATES),
                "seen": rng.choice(DATETIMES),
                "note": "自由文本",
                "lon": lon,
                "lat": lat,
            }
        )
    return rows


@pytest.fixture(scope="module")
def probe(session_engine: Engine) -> Iterator[Engine]:
    with session_engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE mvt_probe (id bigint PRIMARY KEY, code text NOT NULL, name text,"
                " kind text, count integer, height double precision, fixed boolean,"
                " opened date, seen timestamptz, note text,"
                " geom geometry(Point, 4326) NOT NULL)"
            )
        )
        conn.execute(text("CREATE INDEX ix_mvt_probe_geom ON mvt_probe USING gist (geom)"))
        conn.execute(
            text(
                "INSERT INTO mvt_probe VALUES (:id, :code, :name, :kind, :count, :height,"
                " :fixed, CAST(:opened AS date), CAST(:seen AS timestamptz), :note,"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            probe_rows(),
        )
    yield session_engine
    with session_engine.begin() as conn:
        conn.execute(text("DROP TABLE mvt_probe"))


def encoded(engine: Engine, tile: morecantile.Tile) -> bytes:
    sql, params = tiles.tile_query((PROBE,), tile.z, tile.x, tile.y)
    with engine.connect() as conn:
        row = conn.exec_driver_sql(sql, params).one()
    return tiles.assemble_tile((PROBE,), tile.z, tile.x, tile.y, tuple(row))


def encoded_in_place(database_url: str, tile: morecantile.Tile) -> bytes:
    """The tile the service serves: rows read in place from psycopg's libpq result."""
    sql, params = tiles.point_rows_query(PROBE, tile.z, tile.x, tile.y)
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        result = conn.execute(sql, params, binary=True).pgresult
        assert result is not None
        return tiles.encode_point_result(PROBE, result, tile.z, tile.x, tile.y)


def reference(engine: Engine, tile: morecantile.Tile) -> bytes:
    with engine.connect() as conn:
        value = conn.execute(text(REFERENCE), {"z": tile.z, "x": tile.x, "y": tile.y}).scalar()
    return bytes(value or b"")


def tiles_over_the_probe() -> list[morecantile.Tile]:
    found = []
    for z in (14, 15, 16, 17, 18, 20, 22):
        centre = TMS.tile(*lon_lat(HOME, 2048.0, 2048.0), z)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                found.append(morecantile.Tile(centre.x + dx, centre.y + dy, z))
    return found


def test_every_tile_over_the_probe_is_the_bytes_st_asmvt_gives(
    probe: Engine, database_url: str
) -> None:
    compared = nonempty = 0
    for tile in tiles_over_the_probe():
        ours, theirs = encoded(probe, tile), reference(probe, tile)
        assert ours == theirs, tile
        assert encoded_in_place(database_url, tile) == theirs, tile
        compared += 1
        nonempty += bool(ours)
    assert compared == 63 and nonempty >= 30, nonempty


def test_the_tie_and_edge_points_fall_on_both_sides_of_the_buffer_edge(probe: Engine) -> None:
    """The 40 points placed on ties and edges of the home tile (ids 1-40, one negative):
    PostGIS keeps some and drops some, so the byte equality above covers both sides."""
    assert encoded(probe, HOME) == reference(probe, HOME) != b""
    with probe.connect() as conn:
        kept, dropped = conn.execute(
            text(
                "SELECT count(g), count(*) - count(g) FROM (SELECT ST_AsMVTGeom("
                "ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS g"
                " FROM mvt_probe WHERE abs(id) <= 40) AS s"
            ),
            {"z": HOME.z, "x": HOME.x, "y": HOME.y},
        ).one()
    assert kept >= 20 and dropped >= 8, (kept, dropped)


def test_the_envelope_is_postgis_own_to_the_last_bit(session_engine: Engine) -> None:
    rng = random.Random(7)
    wanted = [(0, 0, 0), (1, 1, 0), (24, 2**24 - 1, 2**24 - 1), (24, 0, 2**24 - 1)]
    for z in range(0, 25):
        wanted += [(z, rng.randrange(2**z), rng.randrange(2**z)) for _ in range(8)]
    with session_engine.connect() as conn:
        for z, x, y in wanted:
            box = conn.execute(
                text(
                    "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)"
                    " FROM ST_TileEnvelope(:z, :x, :y) AS b"
                ),
                {"z": z, "x": x, "y": y},
            ).one()
            assert tiles.tile_envelope(z, x, y) == tuple(box), (z, x, y)


def test_the_service_reads_point_rows_in_place() -> None:
    """psycopg's C implementation on the libpq the encoder is linked with (psycopg[c]):
    the faster path, not the records fallback."""
    assert psycopg.pq.__impl__ == "c"
    assert psycopg.pq.version() == libpq_version()
    assert tiles.ROWS_READABLE


def encode(records: bytes, kinds: bytes = b"ls") -> bytes:
    return PointLayer(b"x", (b"id", b"code"), kinds, 0, 0, 1, -1, 4096, 64).encode_records(records)


def test_records_that_are_not_what_the_layout_says_are_refused() -> None:
    with pytest.raises(ValueError, match="expected columns"):
        encode(b"\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="truncated"):
        encode(b"\x00\x00\x00\x05\x00")
    with pytest.raises(ValueError, match="one kind per key"):
        encode(b"", b"l")
    assert encode(b"") == b""
    layer = PointLayer(b"x", (b"id", b"code"), b"ls", 0, 0, 1, -1, 4096, 64)
    layer.encode_records(b"")
    with pytest.raises(ValueError, match="one set of rows"):
        layer.encode_records(b"")
