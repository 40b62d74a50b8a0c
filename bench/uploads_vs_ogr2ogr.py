"""A 100,000-point GPX through the upload path vs `ogr2ogr -f PostgreSQL`, side by side.

Both load the same file into the same PostGIS database, timed from file to committed rows,
in alternating order, `--rounds` times. The upload path also validates every point,
converts it, de-duplicates, snaps every observation (all `lamp_unlit`; an empty city, so
each snap is an index probe), stores it with its original coordinates and stores the
report; ogr2ogr only copies the waypoints into a table of its own (no foreign keys, its
spatial index built once after the load).

Wall time is what the issue's target (ours <= 1.5x ogr2ogr) is about. The machine is
shared, so each side's CPU seconds are recorded too (its client process plus its
PostgreSQL backends, read from /proc): CPU is what a busy machine cannot hide.

Usage: python bench/uploads_vs_ogr2ogr.py [N] [--rounds R] [--record FILE.md]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from gis_api import cluster
from gis_api.database import make_engine
from gis_api.settings import Settings
from gis_api.uploads import run_upload
from layers import migrate
from layers.field_store import UploadMeta, sha256_hex
from layers.profile import load_profile
from tests.data.field.samples import big_gpx

TICKS = os.sysconf("SC_CLK_TCK")
NOW = datetime(2024, 6, 1, tzinfo=UTC)
"""The upload's clock: the file's times (May 2024) are in the past."""


def _pg_dsn(url: URL, database: str | None = None) -> str:
    """The SQLAlchemy URL as a libpq connection string."""
    return (
        f"host={url.host} port={url.port} dbname={database or url.database} "
        f"user={url.username} password={url.password}"
    )


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a local process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class BackendCpu:
    """CPU seconds spent by the database's backends while running: sampled every 20 ms,
    because a backend's numbers vanish with it (ogr2ogr disconnects at the end)."""

    def __init__(self, url: URL) -> None:
        self._url = url
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self, conn: psycopg.Connection[tuple[int]]) -> dict[int, float]:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self._url.database,),
        ).fetchall()
        out = {}
        for (pid,) in pids:
            with contextlib.suppress(OSError):  # ended meanwhile
                out[pid] = _proc_cpu(pid)
        return out

    def _poll(self) -> None:
        with psycopg.connect(_pg_dsn(self._url, "postgres"), autocommit=True) as conn:
            self._start = self._sample(conn)
            self._last = dict(self._start)
            self._ready.set()
            while not self._stop.wait(0.02):
                self._last.update(self._sample(conn))
            self._last.update(self._sample(conn))

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(v - self._start.get(pid, 0.0) for pid, v in self._last.items())


@dataclass(frozen=True)
class Run:
    """One side of one round."""

    wall: float
    client_cpu: float
    server_cpu: float
    stored: int

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu


def _ogr2ogr(url: URL, path: Path) -> int:
    subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            "PG:" + _pg_dsn(url),
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
    with psycopg.connect(_pg_dsn(url)) as conn:
        row = conn.execute("SELECT count(*) FROM bench_ogr_waypoints").fetchone()
    return int(row[0]) if row else 0


def _measure(url: URL, load: Callable[[], int], child: bool) -> Run:
    """Wall and CPU of one load; `child`: the client is a subprocess (ogr2ogr)."""
    who = resource.RUSAGE_CHILDREN if child else resource.RUSAGE_SELF
    before = resource.getrusage(who)
    with BackendCpu(url) as backends:
        start = time.perf_counter()
        stored = load()
        wall = time.perf_counter() - start
    after = resource.getrusage(who)
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(wall, client, backends.seconds, stored)


def one_round(n: int, ours_first: bool) -> tuple[Run, Run]:
    """(ogr2ogr, ours) on a fresh database."""
    settings = Settings()
    cfg = settings.cluster()
    cluster.ensure_running(cfg)
    name = f"civic_gis_bench_{uuid.uuid4().hex[:6]}"
    url_text = cluster.create_database(cfg, name)
    url = make_url(url_text)
    engine = make_engine(url_text)
    migrate.upgrade(engine)
    raw = big_gpx(n) + f"<!-- {time.time_ns()} -->".encode()  # a new hash every run
    profile = load_profile(settings.profile)
    meta = UploadMeta(
        sha256=sha256_hex(raw), size=len(raw), filename="bench.gpx", declared_crs=None, source="cli"
    )

    def ours() -> int:
        outcome = run_upload(engine, raw, meta, None, profile, partial=True, audit="bench", now=NOW)
        return int(outcome.report["points_accepted"])

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.gpx"
            path.write_bytes(raw)
            if ours_first:
                mine = _measure(url, ours, child=False)
                peer = _measure(url, lambda: _ogr2ogr(url, path), child=True)
            else:
                peer = _measure(url, lambda: _ogr2ogr(url, path), child=True)
                mine = _measure(url, ours, child=False)
    finally:
        engine.dispose()
        cluster.drop_database(cfg, name)
    return peer, mine


def main() -> None:
    """Run the rounds; print each and a Markdown table row (medians) for docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--record", type=Path, help="append the Markdown row to this file")
    args = parser.parse_args()
    peers, mine = [], []
    for i in range(args.rounds):
        peer, ours = one_round(args.n, ours_first=i % 2 == 1)
        peers.append(peer)
        mine.append(ours)
        print(
            f"round {i + 1}: ogr2ogr {peer.wall:.2f} s wall, {peer.cpu:.2f} s CPU "
            f"({peer.client_cpu:.2f} client + {peer.server_cpu:.2f} PostgreSQL); "
            f"ours {ours.wall:.2f} s wall, {ours.cpu:.2f} s CPU "
            f"({ours.client_cpu:.2f} + {ours.server_cpu:.2f}); "
            f"wall ratio {ours.wall / peer.wall:.2f}x, CPU ratio {ours.cpu / peer.cpu:.2f}x",
            flush=True,
        )
    wall_ratio = statistics.median(o.wall / p.wall for o, p in zip(mine, peers, strict=True))
    cpu_ratio = statistics.median(o.cpu / p.cpu for o, p in zip(mine, peers, strict=True))
    load = os.getloadavg()[0]
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}"
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {args.n:,} | {args.rounds} "
        f"| {statistics.median(p.wall for p in peers):.2f} s "
        f"| {statistics.median(o.wall for o in mine):.2f} s | **{wall_ratio:.2f}x** "
        f"| {statistics.median(p.cpu for p in peers):.2f} s "
        f"| {statistics.median(o.cpu for o in mine):.2f} s | {cpu_ratio:.2f}x "
        f"| {mine[-1].stored:,} | {machine} |"
    )
    print(
        "| date (UTC) | points | rounds | ogr2ogr wall | ours wall | wall ratio "
        "| ogr2ogr CPU | ours CPU | CPU ratio | stored | machine |"
    )
    print(row)
    if args.record:
        with args.record.open("a") as f:
            f.write(row + "\n")


if __name__ == "__main__":
    main()
