"""Benchmark: what an upload's lookups cost in a real city (the large demo city).

Run: .venv/bin/python -m bench.upload_lookups_city [--database civic_gis_bench] [--n 10000]
     [--repeat 3]

`bench/uploads_vs_ogr2ogr.py` measures the upload path against ogr2ogr in an empty city,
where no point lies in a grid cell and no asset is within reach. This one measures the part
that grows with the city: one chunk of N `lamp_unlit` observations, each 2.4 m east of a
lamp of the large city (so every one is placed in its grid cell and ranked against the
lamps within reach, geodesically), staged and looked up by `look_up_chunk` exactly as an
upload does, in a transaction that is rolled back. Prints seconds per repetition and the
snap verdicts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text

from gis_api import cluster
from gis_api.database import make_engine
from gis_api.settings import Settings
from layers.field_store import Prepared, look_up_chunk
from layers.observations import resolve_kind
from layers.profile import load_profile

OFFSET_DEG = 0.00003
"""2.4 m east at the city's latitude: near its lamp, often within reach of its neighbours."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="civic_gis_bench")
    parser.add_argument("--n", type=int, default=10_000, help="observations in the chunk")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    config = settings.cluster()
    cluster.ensure_running(config)
    engine = make_engine(cluster.url(config, args.database))
    rules = load_profile().field
    with engine.connect() as conn:
        lamps = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM street_lamps ORDER BY id LIMIT :n"),
            {"n": args.n},
        ).all()
        cells = conn.execute(text("SELECT count(*) FROM grids WHERE level = 'grid'")).scalar()
        total = conn.execute(text("SELECT count(*) FROM street_lamps")).scalar()
    at = datetime(2026, 11, 27, tzinfo=UTC)
    staged = [
        (i, lon + OFFSET_DEG, lat, at, "bench", "lamp_unlit", 3.0, "street_lamps")
        for i, (lon, lat) in enumerate(lamps)
    ]
    observation = resolve_kind("lamp_unlit")
    prepared = Prepared(
        observations=[observation] * len(staged), staged=staged, rows=[()] * len(staged)
    )
    seconds: list[float] = []
    verdicts: Counter[str | None] = Counter()
    for _ in range(args.repeat):
        with engine.connect() as conn:
            start = time.perf_counter()
            looked = look_up_chunk(conn, -1, prepared, rules)
            seconds.append(time.perf_counter() - start)
            conn.rollback()
        verdicts = Counter(r.snap for r in looked.found)
    placed = sum(1 for r in looked.found if r.grid_id is not None)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}, database "
        f"{args.database} ({cells:,} grid cells, {total:,} lamps): {len(staged):,} observations "
        f"looked up in {', '.join(f'{s:.2f}' for s in seconds)} s "
        f"(median {statistics.median(seconds):.2f} s); placed in a cell: {placed:,}; "
        f"verdicts: {dict(verdicts)}"
    )


if __name__ == "__main__":
    main()
