"""Side-by-side OGC API benchmark of issue 3: civic-gis, tipg and pygeoapi on the same tables.

    .venv/bin/python -m bench.ogc_peers [--scale large] [--duration 30] [--rounds 2]
        [--connections 16] [--workers 2] [--cases items,item,z12,z14,z16]
        [--servers civic-gis,tipg,pygeoapi] [--explain] [--no-write] [--out FILE]

A run of the large city takes ~9 minutes at the defaults (the first load of the large
city ~20 more). `--scale small` is for debugging (its own database).

What it does, in order:

1. `bench/peers.sh`: the peers (tipg, pygeoapi) in their own venv, var/bench-peers-venv,
   never in the project's; Debian `wrk` as the load generator.
2. Database `civic_gis_bench` (large; `civic_gis_bench_small`/`_city` for the smaller
   scales, so a debugging run never replaces the large city other benchmarks read) on the
   project cluster holding the demo city (`civic-gis demo --scale S --if-empty`, or
   `--replace` when it holds another scale; the scale loaded is kept in the database's
   comment), then ANALYZE.
3. The requests are picked from the data and printed: an items page (`limit=100`) whose
   bbox, a square around the centre of the lamps, is grown until ~50,000 lamps fall in
   it; one lamp near that centre; the z14 tile holding the number of lamps closest to
   3,000, its z12 parent and its fullest z16 child.
4. Three servers on free ports against the same tables, all under uvicorn with the same
   number of worker processes (`--workers`, default 2: one per core of the 2-core
   machine the issue's numbers come from): civic-gis (`gis_api.app:create_app`), tipg
   (`tipg.main:app`, only `public.street_lamps`) and pygeoapi (its Starlette ASGI app,
   `pygeoapi.starlette_app:APP`, PostgreSQL provider on street_lamps).
   civic-gis runs with CIVIC_GIS_AUTH_PUBLIC_READS=true: reads as open as the peers'.
5. For each case and server, `wrk` holds N connections for D seconds (after a short
   warm-up), split into rounds whose server order is reversed each round (a machine
   shared with other work changes its background load over minutes): req/s, p50/p99
   latency, errors, and the PostgreSQL sessions opened meanwhile. Each response is also
   fetched once and compared: feature count, numberMatched and property names of items;
   feature count (all, and inside the tile) and attribute names of tiles. `--explain`
   adds EXPLAIN ANALYZE of civic-gis's items statement.
6. A Markdown table, also written to docs/BENCHMARKS.md (its own section, other sections
   kept), with the machine, date, commit and command; raw numbers in var/bench/.

Same content: civic-gis publishes a fixed property set per layer; the peers publish every
column. So tipg is asked for the same properties with `properties=` (items and tiles) and
pygeoapi's provider is configured with the same `properties` list; tipg's tile buffer is
set to civic-gis's (64 of 4096). Below zoom 14 civic-gis aggregates points into cells
(layers/tiles.py) while tipg sends points (at most 10,000 a tile, its default): the z12
tiles differ by design and the table says so.

Every server started here is stopped at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import psycopg
import yaml

from gis_api import cluster
from gis_api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = ROOT / "var" / "bench"
PEERS_VENV = ROOT / "var" / "bench-peers-venv"
DOC = ROOT / "docs" / "BENCHMARKS.md"
DATABASE = "civic_gis_bench"
SECTION = "## OGC API side by side: civic-gis, tipg, pygeoapi (issue 3)"
LAYER = "street_lamps"
TIPG_ID = f"public.{LAYER}"
TARGET_LAMPS = 50_000
TARGET_TILE_LAMPS = 3_000
TILE_BUFFER = 64
START_TIMEOUT_S = 180
WARMUP_S = 3
SERVERS = ("civic-gis", "tipg", "pygeoapi")
TARGETS = {"items": 5.0, "item": 5.0, "tile": 2.0}
"""civic-gis/tipg req/s ratios the issue asks for (its 'items' read as both items cases)."""


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# --- the database ------------------------------------------------------------------------


def _libpq(url: str) -> str:
    """postgresql+psycopg://... -> postgresql://... (for psycopg, asyncpg and libpq)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _row(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    assert row is not None
    return row


def _marker(scale: str, seed: int) -> str:
    return f"civic-gis bench: demo scale={scale} seed={seed}"


def database_name(scale: str) -> str:
    """`civic_gis_bench` holds the large city (other benchmarks read it too); smaller scales
    get their own database so that a debugging run never replaces the shared one."""
    return DATABASE if scale == "large" else f"{DATABASE}_{scale}"


def _guess_scale(grids: int) -> str:
    """The scale of a demo city loaded by someone else (no marker): small has ~40 grid
    cells, city a few hundred, large >= 5,000 (data/demo/scales.py)."""
    return "small" if grids < 200 else "city" if grids < 2_000 else "large"


def ensure_database(scale: str, seed: int, reload: bool, database: str | None = None) -> str:
    """The bench database with the demo city at `scale`, analysed; its SQLAlchemy URL.

    `database` names another database to use instead (e.g. a copy made with
    `CREATE DATABASE ... TEMPLATE civic_gis_bench` to try a schema change without touching
    the shared one): it must already hold the city at `scale`; it is never loaded or
    replaced here.
    """
    cfg = Settings().cluster()
    cluster.ensure_running(cfg)
    name = database or database_name(scale)
    url = cluster.create_database(cfg, name)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        comment = _row(
            conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
        )[0]
        migrated = _row(conn.execute("SELECT to_regclass('public.grids')").fetchone())[0]
        grids = _row(conn.execute("SELECT count(*) FROM grids").fetchone())[0] if migrated else 0
    if grids and comment is None and seed == 0 and _guess_scale(grids) == scale:
        # Loaded by another benchmark with `civic-gis demo --scale S --if-empty` (seed 0).
        comment = _marker(scale, seed)
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE {name} IS '{comment}'")
    if database is not None and (
        reload or not grids or _guess_scale(grids) != scale or comment != _marker(scale, seed)
    ):
        raise SystemExit(
            f"--database {name}: it must already hold the demo city scale={scale} seed={seed}"
            f" ({comment or f'{grids} grid cells'}); it is never loaded or replaced here"
        )
    if grids and comment == _marker(scale, seed) and not reload:
        log(f"database {name}: demo city scale={scale} already loaded")
    else:
        mode = "--replace" if grids else "--if-empty"
        if grids:
            held = comment or f"{grids} grid cells"
            log(f"database {name} holds another city ({held}): replacing it")
        command = [
            str(ROOT / ".venv" / "bin" / "civic-gis"),
            "demo",
            "--scale",
            scale,
            "--seed",
            str(seed),
            mode,
        ]
        log(f"loading the demo city into {name}: civic-gis demo --scale {scale} {mode}")
        started = time.monotonic()
        subprocess.run(
            command, cwd=ROOT, env={**os.environ, "CIVIC_GIS_DATABASE_URL": url}, check=True
        )
        log(f"loaded in {time.monotonic() - started:.0f} s")
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f"COMMENT ON DATABASE {name} IS '{_marker(scale, seed)}'")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        started = time.monotonic()
        conn.execute("ANALYZE")
        log(f"ANALYZE: {time.monotonic() - started:.1f} s")
    return url


# --- the requests, from the data -----------------------------------------------------------


@dataclass
class Requests:
    """What is asked of every server, chosen from the data."""

    lamps: int
    bbox: tuple[float, float, float, float]
    bbox_lamps: int
    item_id: int
    tiles: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # z -> (z, x, y)
    tile_lamps: dict[int, int] = field(default_factory=dict)


_TILE_XY = """
    floor((ST_X(geom) + 180.0) / 360.0 * 2 ^ %(z)s)::int AS x,
    floor((1 - ln(tan(radians(ST_Y(geom))) + 1 / cos(radians(ST_Y(geom)))) / pi())
          / 2 * 2 ^ %(z)s)::int AS y
"""


def choose_requests(url: str) -> Requests:
    with psycopg.connect(_libpq(url)) as conn:
        lamps, cx, cy = _row(
            conn.execute(
                "SELECT count(*), ST_X(ST_Centroid(ST_Extent(geom))),"
                " ST_Y(ST_Centroid(ST_Extent(geom))) FROM street_lamps"
            ).fetchone()
        )
        target = TARGET_LAMPS if lamps >= 2 * TARGET_LAMPS else lamps // 2
        if target != TARGET_LAMPS:
            log(f"only {lamps} lamps: the bbox aims at {target} (half), not {TARGET_LAMPS}")
        kx = 1.0 / (111_320.0 * math.cos(math.radians(cy)))
        ky = 1.0 / 111_320.0

        def box(half_m: float) -> tuple[float, float, float, float]:
            return (
                round(cx - half_m * kx, 6),
                round(cy - half_m * ky, 6),
                round(cx + half_m * kx, 6),
                round(cy + half_m * ky, 6),
            )

        def count(b: tuple[float, float, float, float]) -> int:
            return int(
                _row(
                    conn.execute(
                        "SELECT count(*) FROM street_lamps"
                        " WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                        b,
                    ).fetchone()
                )[0]
            )

        low, high = 0.0, 200_000.0
        for _ in range(40):
            mid = (low + high) / 2
            if count(box(mid)) < target:
                low = mid
            else:
                high = mid
            if high - low < 1.0:
                break
        bbox = box(high)
        bbox_lamps = count(bbox)
        item_id = int(
            _row(
                conn.execute(
                    "SELECT id FROM street_lamps"
                    " ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1",
                    (cx, cy),
                ).fetchone()
            )[0]
        )
        by_tile = f"SELECT x, y, count(*) AS n FROM (SELECT {_TILE_XY} FROM street_lamps) t"
        x14, y14, n14 = _row(
            conn.execute(
                by_tile + " GROUP BY x, y ORDER BY abs(count(*) - %(target)s), x, y LIMIT 1",
                {"z": 14, "target": TARGET_TILE_LAMPS},
            ).fetchone()
        )
        x16, y16, n16 = _row(
            conn.execute(
                by_tile
                + " WHERE x BETWEEN %(x0)s AND %(x0)s + 3 AND y BETWEEN %(y0)s AND %(y0)s + 3"
                " GROUP BY x, y ORDER BY count(*) DESC, x, y LIMIT 1",
                {"z": 16, "x0": 4 * x14, "y0": 4 * y14},
            ).fetchone()
        )
        x12, y12 = x14 // 4, y14 // 4
        (n12,) = _row(
            conn.execute(
                f"SELECT count(*) FROM (SELECT {_TILE_XY} FROM street_lamps) t"
                " WHERE x = %(x)s AND y = %(y)s",
                {"z": 12, "x": x12, "y": y12},
            ).fetchone()
        )
    return Requests(
        lamps=lamps,
        bbox=bbox,
        bbox_lamps=bbox_lamps,
        item_id=item_id,
        tiles={12: (12, x12, y12), 14: (14, x14, y14), 16: (16, x16, y16)},
        tile_lamps={12: int(n12), 14: int(n14), 16: int(n16)},
    )


# --- the servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path = WORK / f"{self.name}.log"
        handle = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        last = "no answer"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=10) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} on {self.ready_path}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready in {START_TIMEOUT_S} s; {last}; see {self.log_path}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to the server's own process group (uvicorn and its workers), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _uvicorn_args(port: int, workers: int) -> list[str]:
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _base_env() -> dict[str, str]:
    """The environment without the project's own settings (peers read theirs)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CIVIC_GIS_", "TIPG_", "PYGEOAPI_")) and k != "DATABASE_URL"
    }


def civic_server(url: str, workers: int) -> Server:
    port = free_port()
    return Server(
        name="civic-gis",
        port=port,
        command=[
            str(ROOT / ".venv" / "bin" / "uvicorn"),
            "--factory",
            "gis_api.app:create_app",
            *_uvicorn_args(port, workers),
        ],
        # Reads as open as the peers': no login (issue 7 closes reads unless this is set).
        env={**_base_env(), "CIVIC_GIS_DATABASE_URL": url, "CIVIC_GIS_AUTH_PUBLIC_READS": "true"},
        cwd=ROOT,
        ready_path=f"/collections/{LAYER}?f=json",
    )


def tipg_server(url: str, workers: int) -> Server:
    port = free_port()
    conf = f"TIPG_TABLE_CONFIG__public_{LAYER}__"
    return Server(
        name="tipg",
        port=port,
        command=[
            str(PEERS_VENV / "bin" / "uvicorn"),
            "tipg.main:app",
            *_uvicorn_args(port, workers),
        ],
        env={
            **_base_env(),
            "DATABASE_URL": _libpq(url),
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": f'["{TIPG_ID}"]',  # schema-qualified
            "TIPG_DB_FUNCTIONS": "[]",  # no function collections
            f"{conf}geomcol": "geom",
            f"{conf}pk": "id",
            f"{conf}datetimecol": "last_inspected",
            "TIPG_TILE_BUFFER": str(TILE_BUFFER),
        },
        cwd=WORK,  # no .env there: tipg reads one from its working directory
        ready_path=f"/collections/{TIPG_ID}",
    )


def pygeoapi_config(url: str, port: int, properties: list[str]) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "attribution": "OpenStreetMap",
            },
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "civic-gis bench peer",
                "description": "pygeoapi on the civic-gis demo city",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "none",
                "url": "http://127.0.0.1",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "civic-gis bench", "url": "http://127.0.0.1"},
            "contact": {
                "name": "bench",
                "position": "bench",
                "address": "-",
                "city": "-",
                "stateorprovince": "-",
                "postalcode": "-",
                "country": "-",
                "phone": "-",
                "fax": "-",
                "email": "bench@example.invalid",
                "url": "http://127.0.0.1",
                "hours": "-",
                "instructions": "-",
                "role": "pointOfContact",
            },
        },
        "resources": {
            LAYER: {
                "type": "collection",
                "title": "Street lamps",
                "description": "路灯 / Street lamps",
                "keywords": ["lamps"],
                "links": [],
                "extents": {"spatial": {"bbox": [-180, -90, 180, 90]}},
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": parts.hostname,
                            "port": parts.port,
                            "dbname": parts.path.lstrip("/"),
                            "user": unquote(parts.username or ""),
                            "password": unquote(parts.password or ""),
                            "search_path": ["public"],
                        },
                        "id_field": "id",
                        "table": LAYER,
                        "geom_field": "geom",
                        "properties": properties,
                    }
                ],
            }
        },
    }


def pygeoapi_server(url: str, workers: int, properties: list[str]) -> Server:
    port = free_port()
    config = WORK / "pygeoapi-config.yml"
    openapi = WORK / "pygeoapi-openapi.yml"
    config.write_text(
        yaml.safe_dump(pygeoapi_config(url, port, properties), allow_unicode=True, sort_keys=False)
    )
    config.chmod(0o600)  # it holds the database password
    env = {**_base_env(), "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    generated = subprocess.run(
        [
            str(PEERS_VENV / "bin" / "pygeoapi"),
            "openapi",
            "generate",
            str(config),
            "--output-file",
            str(openapi),
        ],
        cwd=WORK,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if generated.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed:\n{generated.stderr[-3000:]}")
    return Server(
        name="pygeoapi",
        port=port,
        command=[
            str(PEERS_VENV / "bin" / "uvicorn"),
            "pygeoapi.starlette_app:APP",
            *_uvicorn_args(port, workers),
        ],
        env=env,
        cwd=WORK,
        ready_path=f"/collections/{LAYER}?f=json",
    )


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    try:
        for server in servers:
            log(f"starting {server.name} on port {server.port}")
            server.start()
        for server in servers:
            server.wait_ready()
            log(f"{server.name} ready: {server.base}")
        yield
    finally:
        for server in servers:
            server.stop()
        log("servers stopped")


# --- the cases -----------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    kind: str  # items | item | tile
    title: str
    urls: dict[str, str]  # server -> path and query


def civic_names() -> tuple[list[str], list[str]]:
    """civic-gis's published property names (items) and full-zoom tile attribute names."""
    from layers import tiles
    from layers.catalog import COLLECTIONS
    from layers.features_query import property_names
    from layers.tables import table_of

    spec = COLLECTIONS.get(LAYER)
    items = list(property_names(spec, table_of(spec)))
    tile = ["id", "code", *(f.name for f in tiles.tile_fields(spec))]
    return items, list(dict.fromkeys(tile))


def build_cases(req: Requests, item_props: list[str], tile_props: list[str]) -> list[Case]:
    bbox = ",".join(f"{v:.6f}" for v in req.bbox)
    page = {"limit": "100", "bbox": bbox}
    cases = [
        Case(
            "items",
            "items",
            f"items limit=100 bbox ({req.bbox_lamps:,} lamps match)",
            {
                "civic-gis": f"/collections/{LAYER}/items?" + urlencode({**page, "f": "json"}),
                "tipg": f"/collections/{TIPG_ID}/items?"
                + urlencode({**page, "f": "geojson", "properties": ",".join(item_props)}),
                "pygeoapi": f"/collections/{LAYER}/items?" + urlencode({**page, "f": "json"}),
            },
        ),
        Case(
            "item",
            "item",
            f"single item (id {req.item_id})",
            {
                "civic-gis": f"/collections/{LAYER}/items/{req.item_id}?f=json",
                "tipg": f"/collections/{TIPG_ID}/items/{req.item_id}?"
                + urlencode({"f": "geojson", "properties": ",".join(item_props)}),
                "pygeoapi": f"/collections/{LAYER}/items/{req.item_id}?f=json",
            },
        ),
    ]
    for z in (12, 14, 16):
        _, x, y = req.tiles[z]
        cases.append(
            Case(
                f"z{z}",
                "tile",
                f"tile z{z} {z}/{x}/{y} ({req.tile_lamps[z]:,} lamps)",
                {
                    "civic-gis": f"/collections/{LAYER}/tiles/WebMercatorQuad/{z}/{x}/{y}",
                    "tipg": f"/collections/{TIPG_ID}/tiles/WebMercatorQuad/{z}/{x}/{y}?"
                    + urlencode({"properties": ",".join(tile_props)}),
                },
            )
        )
    return cases


# --- content checks ------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _feature_summary(status: int, body: bytes, kind: str) -> dict[str, Any]:
    if status != 200:
        return {"status": status, "error": body[:300].decode("utf-8", "replace")}
    doc = json.loads(body)
    features = doc.get("features", []) if kind == "items" else [doc]
    keys: set[str] = set()
    for f in features:
        keys.update((f.get("properties") or {}).keys())
    return {
        "status": status,
        "bytes": len(body),
        "numberMatched": doc.get("numberMatched"),
        "numberReturned": doc.get("numberReturned"),
        "features": len(features),
        "ids": sorted(str(f.get("id")) for f in features),
        "keys": sorted(keys),
    }


def _tile_summaries(bodies: dict[str, tuple[int, bytes]], case: Case) -> dict[str, Any]:
    paths = {}
    out: dict[str, Any] = {}
    for name, (status, body) in bodies.items():
        if status not in (200, 204):
            out[name] = {"status": status, "error": body[:300].decode("utf-8", "replace")}
            continue
        path = WORK / f"{case.id}-{name}.mvt"
        path.write_bytes(body)
        paths[name] = path
        out[name] = {"status": status, "bytes": len(body)}
    if paths:
        decoded = json.loads(
            subprocess.run(
                [
                    str(PEERS_VENV / "bin" / "python"),
                    str(BENCH / "mvt_count.py"),
                    *map(str, paths.values()),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for name, path in paths.items():
            out[name].update(decoded[str(path)])
    return out


def check_content(case: Case, servers: dict[str, Server]) -> tuple[dict[str, Any], str]:
    """Per-server summary of one response, and the 'same content?' verdict."""
    bodies = {name: fetch(servers[name].base + path) for name, path in case.urls.items()}
    if case.kind == "tile":
        summary = _tile_summaries(bodies, case)
    else:
        summary = {n: _feature_summary(s, b, case.kind) for n, (s, b) in bodies.items()}
    return summary, verdict(case, summary)


def verdict(case: Case, summary: dict[str, Any]) -> str:
    ref = summary["civic-gis"]
    notes: list[str] = []
    same = True
    for name, got in summary.items():
        if got.get("status") not in (200, 204):
            notes.append(f"{name}: HTTP {got.get('status')}")
            same = False
    if not same:
        return "no: " + "; ".join(notes)
    others = [n for n in summary if n != "civic-gis"]
    if case.kind == "tile":
        # Features inside the tile are the content; those in the buffer only differ in
        # how far beyond the edge a server looks (civic-gis 64 units, tipg none).
        extra: list[str] = []
        for name in others:
            got = summary[name]
            if got["inside"] != ref["inside"]:
                same = False
                notes.append(
                    f"features inside the tile: civic {ref['inside']} vs {name} {got['inside']}"
                )
            if got["features"] - got["inside"] != ref["features"] - ref["inside"]:
                extra.append(
                    f"in the buffer: civic {ref['features'] - ref['inside']}, "
                    f"{name} {got['features'] - got['inside']}"
                )
            if got["keys"] != ref["keys"]:
                same = False
                only_c = sorted(set(ref["keys"]) - set(got["keys"]))
                only_o = sorted(set(got["keys"]) - set(ref["keys"]))
                notes.append(f"attributes only civic {only_c}, only {name} {only_o}")
        if same:
            return (
                f"yes ({ref['inside']} features inside the tile, {len(ref['keys'])} attributes"
                + (f"; {'; '.join(extra)}" if extra else "")
                + ")"
            )
        if case.id == "z12" and ref.get("layers"):
            cells = sum(layer["count_sum"] for layer in ref["layers"].values())
            notes.append(f"civic thins below z14: {ref['features']} cells counting {cells} lamps")
        return "no: " + "; ".join(notes + extra)
    for name in others:
        got = summary[name]
        for key in ("features", "numberReturned", "numberMatched"):
            if got.get(key) != ref.get(key) and not (key != "features" and got.get(key) is None):
                same = False
                notes.append(f"{key} civic {ref.get(key)} vs {name} {got.get(key)}")
        if got["keys"] != ref["keys"]:
            same = False
            only_c = sorted(set(ref["keys"]) - set(got["keys"]))
            only_o = sorted(set(got["keys"]) - set(ref["keys"]))
            notes.append(f"properties only civic {only_c}, only {name} {only_o}")
    ids = {n: s["ids"] for n, s in summary.items()}
    same_ids = all(v == ids["civic-gis"] for v in ids.values())
    if same:
        head = (
            f"yes ({ref['features']} features"
            + (f" of {ref['numberMatched']:,} matched" if ref.get("numberMatched") else "")
            + f", {len(ref['keys'])} properties"
        )
        return head + (", same ids)" if same_ids else ", other ids: no order asked)")
    return "no: " + "; ".join(notes)


# --- load ----------------------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(BENCH / "wrk_report.lua"),
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in result.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
            data["non2xx"] = int(non2xx.group(1)) if non2xx else 0
            return data
    raise RuntimeError(f"wrk printed no result: {result.stdout}\n{result.stderr}")


def pg_sessions(url: str) -> int:
    """Sessions ever opened on the bench database (PostgreSQL 14+): their growth during a
    run shows a server opening connections per request instead of keeping a pool. Other
    users of the database count too."""
    with psycopg.connect(_libpq(url)) as conn:
        return int(
            _row(
                conn.execute(
                    "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                ).fetchone()
            )[0]
        )


def measure(
    case: Case, servers: dict[str, Server], args: argparse.Namespace, url: str
) -> dict[str, Any]:
    """Load every server of a case: `rounds` rounds of duration/rounds, order reversed each
    round, so a change in the machine's background load does not favour one server.

    Per server: req/s over all rounds, p50 = request-weighted mean of the rounds' p50,
    p99 = the worst round's p99, errors summed, 1-minute load average before each round.
    """
    names = list(case.urls)
    for name in names:
        wrk(servers[name].base + case.urls[name], WARMUP_S, args.connections, args.threads)
    seconds = max(1, round(args.duration / args.rounds))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            before = os.getloadavg()[0]
            sessions = pg_sessions(url)
            got = wrk(servers[name].base + case.urls[name], seconds, args.connections, args.threads)
            got["new_sessions"] = pg_sessions(url) - sessions - 1  # less our own probe
            got["loadavg"] = before
            runs[name].append(got)
    out: dict[str, Any] = {}
    for name, rounds in runs.items():
        requests = sum(r["requests"] for r in rounds)
        duration_us = sum(r["duration_us"] for r in rounds)
        out[name] = {
            "requests": requests,
            "duration_us": duration_us,
            "rps": requests / (duration_us / 1e6),
            "p50_us": sum(r["p50_us"] * r["requests"] for r in rounds) / max(requests, 1),
            "p99_us": max(r["p99_us"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            "non2xx": sum(r["non2xx"] for r in rounds),
            "loadavg": [r["loadavg"] for r in rounds],
            "new_sessions": sum(r["new_sessions"] for r in rounds),
            "rounds": rounds,
        }
    return out


def explain_items(url: str, req: Requests) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement civic-gis runs for the items case.

    Built with the service's own query code (so it follows that code when it changes);
    a failure is reported, not raised: the benchmark does not depend on these internals.
    """
    try:
        from sqlalchemy import create_engine, text
        from sqlalchemy.dialects import postgresql

        from gis_api.ogc import crs as api_crs
        from gis_api.ogc.bbox import bbox_filter
        from layers.catalog import COLLECTIONS
        from layers.features_query import ItemsQuery, items_statement
        from layers.tables import table_of

        spec = COLLECTIONS.get(LAYER)
        table = table_of(spec)
        crs = api_crs.resolve(None, Settings().city_gk_epsg)
        box = bbox_filter(table, req.bbox, crs, points=True)
        query = ItemsQuery(spec, table, any_of=box.clauses, params=box.params)
        statement = items_statement(query)
        sql = str(
            statement.compile(
                dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                compile_kwargs={"literal_binds": True},
            )
        )
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(statement).one()  # warm the cache
                return [
                    str(line)
                    for line in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).scalars()
                ]
        finally:
            engine.dispose()
    except Exception as exc:  # diagnostics only
        return [f"EXPLAIN failed: {exc.__class__.__name__}: {exc}"]


# --- report --------------------------------------------------------------------------------


def _sh(command: str) -> str:
    try:
        return subprocess.run(
            command, shell=True, capture_output=True, text=True, check=False, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return ""


def machine_info(url: str) -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(_libpq(url)) as conn:
        pg = _row(conn.execute("SHOW server_version").fetchone())[0]
        postgis = _row(conn.execute("SELECT postgis_lib_version()").fetchone())[0]
    peers = _sh(
        f"{PEERS_VENV}/bin/python -m pip list 2>/dev/null"
        " | grep -i -E '^(tipg|pygeoapi|uvicorn) ' | tr -s ' ' | paste -sd ','"
    )
    changed = _sh("git status --porcelain --untracked-files=no | wc -l")
    untracked = _sh("git status --porcelain | grep -c '^??'")
    dirty = (
        f" + uncommitted work in the tree ({changed} tracked files changed, {untracked} untracked)"
        if changed != "0" or untracked != "0"
        else ""
    )
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": _sh("nproc"),
        "free -g": _sh("free -g"),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": f"PostgreSQL {pg}, PostGIS {postgis}",
        "peers": peers,
        "wrk": _sh("wrk -v 2>&1 | head -1"),
        "commit": _sh("git rev-parse HEAD") + dirty,
    }


def _fmt_rps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def render_markdown(
    args: argparse.Namespace,
    req: Requests,
    cases: list[Case],
    results: dict[str, dict[str, Any]],
    info: dict[str, str],
    command: str,
) -> str:
    loads = "; ".join(
        f"{cid} "
        + ", ".join(
            f"{n} {'/'.join(f'{a:.1f}' for a in r['load'][n]['loadavg'])}" for n in r["load"]
        )
        for cid, r in results.items()
    )
    lines = [
        SECTION,
        "",
        f"Reproduce: `{command}` (after `bash bench/peers.sh`, which it also runs).",
        "",
        f"- date: {info['date']}; commit {info['commit']}",
        f"- machine: {info['nproc']} CPUs ({info['cpu']}), kernel {info['kernel']}, "
        f"Python {info['python']}, {info['postgres']}",
        f"- peers: {info['peers']}; load generator: {info['wrk']}",
        f"- demo city scale `{args.scale}`: {req.lamps:,} street lamps; "
        f"{args.connections} connections held for {args.duration} s per case and server "
        f"after a {WARMUP_S} s warm-up, in {args.rounds} round(s) (server order reversed each "
        f"round; p50 = request-weighted mean of the rounds, p99 = worst round), "
        f"{args.threads} wrk threads, on the same machine as the servers and PostgreSQL",
        f"- 1-minute load average before each round: {loads}",
        f"- every server under uvicorn with {args.workers} worker processes "
        f"({'one per core' if str(args.workers) == info['nproc'] else 'as asked'}); "
        "tipg restricted to public.street_lamps; pygeoapi through its Starlette app and "
        "PostgreSQL provider",
        f"- items bbox {','.join(f'{v:.6f}' for v in req.bbox)} ({req.bbox_lamps:,} lamps); "
        f"tiles: "
        + ", ".join(
            f"{z}/{x}/{y} ({req.tile_lamps[zz]:,} lamps)" for zz, (z, x, y) in req.tiles.items()
        ),
        "",
        "| case | civic-gis req/s | tipg req/s | pygeoapi req/s | ratio civic/tipg "
        "| ratio civic/pygeoapi | same content? |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in cases:
        r = results[case.id]
        rps = {n: (r["load"][n]["rps"] if n in r["load"] else None) for n in SERVERS}
        lines.append(
            f"| {case.title} | {_fmt_rps(rps['civic-gis'])} | {_fmt_rps(rps['tipg'])} "
            f"| {_fmt_rps(rps['pygeoapi'])} | {_ratio(rps['civic-gis'], rps['tipg'])} "
            f"| {_ratio(rps['civic-gis'], rps['pygeoapi'])} | {r['verdict']} |"
        )
    lines += [
        "",
        "| case | server | req/s | p50 ms | p99 ms | requests | errors | new PG sessions "
        "| target vs tipg |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in cases:
        r = results[case.id]
        for name in SERVERS:
            load = r["load"].get(name)
            if load is None:
                continue
            target = ""
            if name == "civic-gis" and "tipg" in r["load"]:
                want = TARGETS[case.kind]
                got = load["rps"] / r["load"]["tipg"]["rps"] if r["load"]["tipg"]["rps"] else 0
                target = f"≥{want:g}×: {'met' if got >= want else 'MISSED'} ({got:.2f}×)"
            errors = load["errors"] + load["non2xx"]
            lines.append(
                f"| {case.id} | {name} | {load['rps']:,.1f} | {load['p50_us'] / 1000:,.1f} "
                f"| {load['p99_us'] / 1000:,.1f} | {load['requests']:,} | {errors} "
                f"| {load['new_sessions']} | {target} |"
            )
    lines += [
        "",
        "Content compared on one response per server: items by feature count, numberMatched "
        "and property names (tipg asked with `properties=` for civic-gis's set, pygeoapi "
        "configured with it); tiles by features (all, and inside the tile extent) and "
        "attribute names, decoded with mapbox-vector-tile. The issue's reference numbers "
        "(2026-11-25, 2 cores, 16 connections): tipg 11-13 req/s on the items request, "
        "182 req/s on a z14 tile of ~3,000 lamps; pygeoapi 7 req/s on the items request.",
        "",
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip("\n") + "\n")


# --- main ----------------------------------------------------------------------------------


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ogc_peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--scale", choices=("small", "city", "large"), default="large")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--duration", type=int, default=30, help="seconds of load per case and server"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of every server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--rounds", type=int, default=2, help="split each case's load into rounds, order reversed"
    )
    parser.add_argument("--cases", default="items,item,z12,z14,z16")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma list of the servers to run (civic-gis always; for quick iterations)",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown section to this file")
    parser.add_argument("--reload", action="store_true", help="reload the demo city")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE civic-gis's items statement"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    parser.add_argument(
        "--database",
        help="use this database (already holding the city at --scale, e.g. a TEMPLATE copy"
        " with a schema change) instead of civic_gis_bench[_SCALE]",
    )
    args = parser.parse_args(argv)
    chosen = {"civic-gis", *args.servers.split(",")}
    if not chosen <= set(SERVERS):
        parser.error(f"--servers: unknown {sorted(chosen - set(SERVERS))}; known {SERVERS}")
    given = argv if argv is not None else sys.argv[1:]
    command = ".venv/bin/python -m bench.ogc_peers " + shlex.join(given)

    signal.signal(signal.SIGTERM, _sigterm)
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(["bash", str(BENCH / "peers.sh")], check=True, stdout=subprocess.DEVNULL)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk (bench/peers.sh does it as root)")

    url = ensure_database(args.scale, args.seed, args.reload, args.database)
    req = choose_requests(url)
    log(
        f"{req.lamps:,} lamps; items bbox {req.bbox} matches {req.bbox_lamps:,}; "
        f"item id {req.item_id}; tiles "
        + ", ".join(
            f"{z}/{x}/{y}: {req.tile_lamps[zz]:,} lamps" for zz, (z, x, y) in req.tiles.items()
        )
    )
    item_props, tile_props = civic_names()
    wanted = args.cases.split(",")
    cases = [c for c in build_cases(req, item_props, tile_props) if c.id in wanted]
    for case in cases:
        case.urls = {name: path for name, path in case.urls.items() if name in chosen}
    servers = [civic_server(url, args.workers)]
    if "tipg" in chosen:
        servers.append(tipg_server(url, args.workers))
    if "pygeoapi" in chosen:
        servers.append(pygeoapi_server(url, args.workers, item_props))
    by_name = {s.name: s for s in servers}
    results: dict[str, dict[str, Any]] = {}
    with running(servers):
        for case in cases:
            summary, same = check_content(case, by_name)
            log(f"{case.id}: same content? {same}")
            load = measure(case, by_name, args, url)
            for name, got in load.items():
                log(
                    f"{case.id} {name}: {got['rps']:,.1f} req/s, p50 {got['p50_us'] / 1000:.1f} ms,"
                    f" p99 {got['p99_us'] / 1000:.1f} ms, errors {got['errors'] + got['non2xx']}"
                    f" (load average before: {', '.join(f'{a:.1f}' for a in got['loadavg'])})"
                )
            results[case.id] = {
                "urls": case.urls,
                "content": summary,
                "verdict": same,
                "load": load,
            }
    info = machine_info(url)
    plan = explain_items(url, req) if args.explain else []
    if plan:
        print("\ncivic-gis items statement, EXPLAIN (ANALYZE, BUFFERS):")
        print("\n".join(plan))
    markdown = render_markdown(args, req, cases, results, info, command)
    print()
    print(markdown)
    raw = WORK / f"ogc_peers-{args.scale}.json"
    raw.write_text(
        json.dumps(
            {
                "args": vars(args),
                "requests": req.__dict__,
                "info": info,
                "results": results,
                "civic_items_plan": plan,
            },
            indent=1,
            default=str,
            ensure_ascii=False,
        )
    )
    if args.out is not None:
        args.out.write_text(markdown + "\n")
        log(f"written to {args.out}")
    if not args.no_write:
        write_doc(markdown)
        log(f"written to {DOC.relative_to(ROOT)} (raw numbers: {raw.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
