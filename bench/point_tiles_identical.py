"""Point tiles as served (rows encoded by layers/_mvt_points.pyx) against PostGIS's ST_AsMVT.

    .venv/bin/python -m bench.point_tiles_identical [--scale large] [--lamps 400]

On the benchmark city (`bench.ogc_peers` loads it, and so does this), for `--lamps`
lamps drawn at random (repeatably), the tile holding each lamp and two neighbours at z14,
15, 16, 17, 18, 20 and 22 are built both ways and compared byte for byte: the service's
read (`tiles.read_tile`) and the plain
`ST_AsMVT(ST_AsMVTGeom(ST_Transform(geom, 3857), ...))` query a PostGIS user writes, with
the catalog's attributes (dates as `to_char` text). Prints the counts; exits 1 when any
tile differs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import morecantile
import psycopg

from bench.ogc_peers import ensure_database
from layers import tiles
from layers.catalog import COLLECTIONS, FieldKind, LayerSpec

ZOOMS = (14, 15, 16, 17, 18, 20, 22)
TMS = morecantile.tms.get("WebMercatorQuad")


def reference_sql(spec: LayerSpec) -> str:
    """The ST_AsMVT statement of one point layer's tile (parameters z, x, y)."""
    columns = ["t.id AS fid", "t.id AS id", "t.code AS code"]
    for f in tiles.tile_fields(spec):
        name = f'"{f.name}"'
        if f.kind is FieldKind.DATE:
            columns.append(f"to_char(t.{name}, 'YYYY-MM-DD') AS {name}")
        elif f.kind is FieldKind.DATETIME:
            columns.append(
                f"to_char(t.{name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS {name}"
            )
        else:
            columns.append(f"t.{name} AS {name}")
    envelope = "ST_TileEnvelope(%(z)s, %(x)s, %(y)s)"
    return (
        f"SELECT ST_AsMVT(q, '{spec.id}', 4096, 'geom', 'fid') FROM (SELECT {', '.join(columns)},"
        f" ST_AsMVTGeom(ST_Transform(t.geom, 3857), {envelope}, 4096, 64, true) AS geom"
        f' FROM "{spec.table}" AS t WHERE t.geom && ST_Transform('
        "ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326)) AS q"
    )


async def compare(url: str, lamps: int) -> tuple[int, int, int]:
    spec = COLLECTIONS.get("street_lamps")
    reference = reference_sql(spec)
    same = different = empty = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM street_lamps"
            " TABLESAMPLE SYSTEM (1) REPEATABLE (3) LIMIT %(n)s",
            {"n": lamps},
        )
        points = await cursor.fetchall()
        for lon, lat in points:
            for z in ZOOMS:
                tile = TMS.tile(lon, lat, z)
                for x, y in ((tile.x, tile.y), (tile.x + 1, tile.y), (tile.x, tile.y - 1)):
                    ours = await tiles.read_tile(conn, (spec,), z, x, y)
                    row = await (
                        await conn.execute(reference, {"z": z, "x": x, "y": y}, binary=True)
                    ).fetchone()
                    theirs = bytes(row[0]) if row and row[0] else b""
                    if ours == theirs:
                        same += 1
                        empty += not ours
                    else:
                        different += 1
                        print(f"differs: {z}/{x}/{y} ({len(ours)} vs {len(theirs)} bytes)")
    return same, different, empty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", choices=("small", "city", "large"), default="large")
    parser.add_argument("--lamps", type=int, default=400)
    args = parser.parse_args(argv)
    url = ensure_database(args.scale, 0, reload=False).replace("+psycopg", "")
    print(f"encoder reads rows in place: {tiles.ROWS_READABLE}")
    same, different, empty = asyncio.run(compare(url, args.lamps))
    total = same + different
    print(f"tiles compared {total}: identical {same} ({empty} empty), {different} differ")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
