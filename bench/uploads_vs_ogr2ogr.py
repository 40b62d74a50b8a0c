"""A 100,000-point GPX through the upload path vs `ogr2ogr -f PostgreSQL`, side by side.

Both load the same file into the same PostGIS database, one run each, timed from file to
committed rows. The upload path also validates every point, converts it, snaps every
observation (all `lamp_unlit`; an empty city, so each snap is an index probe) and stores
the report; ogr2ogr only copies the waypoints. Usage: python bench/uploads_vs_ogr2ogr.py [N]
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from gis_api import cluster
from gis_api.database import make_engine
from gis_api.settings import Settings
from gis_api.uploads import run_upload
from layers import migrate
from layers.field_store import UploadMeta, sha256_hex
from layers.profile import load_profile
from tests.data.field.samples import big_gpx


def _pg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string for ogr2ogr."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return (
        f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username} "
        f"password={u.password}"
    )


def main(n: int = 100_000) -> None:
    """Run both loads once and print a Markdown table row for docs/BENCHMARKS.md."""
    settings = Settings()
    cfg = settings.cluster()
    cluster.ensure_running(cfg)
    name = f"civic_gis_bench_{uuid.uuid4().hex[:6]}"
    url = cluster.create_database(cfg, name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    raw = big_gpx(n) + f"<!-- {time.time_ns()} -->".encode()  # a new hash every run
    profile = load_profile(settings.profile)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.gpx"
        path.write_bytes(raw)
        start = time.perf_counter()
        subprocess.run(
            [
                "ogr2ogr",
                "-f",
                "PostgreSQL",
                _pg_dsn(url),
                str(path),
                "waypoints",
                "-nln",
                "bench_ogr_waypoints",
                "-overwrite",
                "-lco",
                "SPATIAL_INDEX=GIST",
                "--config",
                "PG_USE_COPY",
                "YES",
            ],
            check=True,
        )
        ogr = time.perf_counter() - start
    meta = UploadMeta(
        sha256=sha256_hex(raw), size=len(raw), filename="bench.gpx", declared_crs=None, source="cli"
    )
    start = time.perf_counter()
    outcome = run_upload(
        engine,
        raw,
        meta,
        None,
        profile,
        partial=True,
        audit="bench",
        now=datetime(2024, 6, 1, tzinfo=UTC),
    )
    ours = time.perf_counter() - start
    engine.dispose()
    cluster.drop_database(cfg, name)
    stored = outcome.report["points_accepted"]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(f"| {n:,} | {ogr:.2f} s | {ours:.2f} s | {ours / ogr:.2f}x | {stored:,} | {machine} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
