"""Benchmark: the map's first view on the large demo city, and a naive folium map beside it.

Run: .venv/bin/python -m bench.map_first_view [--database civic_gis_bench] [--runs 3]
     [--naive-timeout 180] [--no-write]

Needs a database holding a demo city (`civic-gis demo --scale large`, or `--scale city`
when the large one is not there). The service runs as its own uvicorn process on
loopback (as `civic-gis serve` does, reads public); Debian's chromium (headless, the
flags of map_ui.browser) opens it in a fresh context per run, so nothing is cached.

Measured, from navigation start (performance.timeOrigin):
- city zoom: `/map`, fitted to the whole jurisdiction: the lamp layer's first `load`
  (every visible lamp tile fetched and drawn; below z14 the server thins lamps into cells);
- street zoom: `/map/grids/{code}` of the grid holding the most lamps: every lamp drawn;
- pan/zoom: after the street view, 6 pans of 400 px and a zoom out and in, each waited
  for until every tile layer has drawn; the longest main-thread task (PerformanceObserver
  `longtask`) says whether the page froze.
Then the naive map: folium with the whole lamp layer inlined as GeoJSON (id, code, status;
circle markers on a canvas, Leaflet from the same local files), served from loopback:
how big the page is, and how far chromium gets before the timeout.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from gis_api import cluster
from gis_api.database import make_engine
from gis_api.settings import Settings
from map_ui import assets
from map_ui.browser import is_local, launch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Map first view: vector tiles vs a naive folium map (issue 6)"
VIEWPORT = {"width": 1280, "height": 800}
TARGET_MS = 2000

LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__longTasks.push(e.duration);
}).observe({type: 'longtask', buffered: true});
"""

SETTLED = """() => Object.values(civicMap.layers).every(
  l => !civicMap.map.hasLayer(l) || !l._loading)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def service(url: str) -> Iterator[str]:
    """`civic-gis serve` equivalent on a free loopback port, reads public."""
    port = _free_port()
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": url, "CIVIC_GIS_AUTH_PUBLIC_READS": "true"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "gis_api.app:create_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the service did not start")
        time.sleep(0.3)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def busiest_grid(engine: Engine) -> tuple[str, int]:
    """The grid cell with the most lamps: the densest street view."""
    sql = (
        "SELECT g.code, count(*) FROM street_lamps l JOIN grids g ON g.id = l.grid_id"
        " WHERE g.level = 'grid' GROUP BY g.code ORDER BY count(*) DESC, g.code LIMIT 1"
    )
    with engine.connect() as conn:
        code, n = conn.execute(text(sql)).one()
    return str(code), int(n)


def first_view(browser: Any, url: str, outside: list[str]) -> dict[str, Any]:
    """Open `url` in a fresh context; timings of the lamp layer and of the whole view."""
    context = browser.new_context(viewport=VIEWPORT)
    context.on("request", lambda r: None if is_local(r.url) else outside.append(r.url))
    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    started = time.monotonic()
    page.goto(url)
    page.wait_for_function("window.civicMapReady === true", timeout=120_000)
    result: dict[str, Any] = page.evaluate(
        """() => ({lamps: civicMap.timings.firstLoad.street_lamps, ready: civicMap.timings.ready,
                  zoom: civicMap.map.getZoom(),
                  requests: performance.getEntriesByType('resource').length,
                  bytes: performance.getEntriesByType('resource')
                    .reduce((a, e) => a + (e.encodedBodySize || 0), 0)})"""
    )
    result["wall_s"] = time.monotonic() - started
    result["page"] = page
    result["context"] = context
    return result


def pan_and_zoom(page: Any) -> dict[str, float]:
    """Six pans and a zoom out/in, each until drawn: total time and longest task."""
    page.evaluate("() => { window.__longTasks = []; }")
    started = time.monotonic()
    moves = ["panBy([400, 0])"] * 3 + ["panBy([0, 300])"] * 3 + ["zoomOut()", "zoomIn()"]
    for move in moves:
        page.evaluate(f"() => civicMap.map.{move}")
        page.wait_for_timeout(50)
        page.wait_for_function(SETTLED, timeout=60_000)
    tasks = page.evaluate("() => window.__longTasks")
    return {"seconds": time.monotonic() - started, "longest_ms": max(tasks, default=0.0)}


# --- the naive folium map ---------------------------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def naive_page(engine: Engine, folder: Path) -> dict[str, Any]:
    """folium with every lamp inlined as GeoJSON; Leaflet copied next to the page."""
    import folium
    import geopandas as gpd

    started = time.monotonic()
    with engine.connect() as conn:
        lamps = gpd.read_postgis(
            "SELECT id, code, status, geom FROM street_lamps", conn, geom_col="geom"
        )
    m = folium.Map(location=[44.58, 129.6], zoom_start=11, tiles=None, prefer_canvas=True)
    m.default_js = [("leaflet", "leaflet.js")]
    m.default_css = [("leaflet_css", "leaflet.css")]
    folium.GeoJson(
        lamps,
        name="路灯",
        marker=folium.CircleMarker(radius=3, fill=True),
    ).add_to(m)
    html = m.get_root().render()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(html, encoding="utf-8")
    for name in ("leaflet.js", "leaflet.css"):
        source = assets.resolve(f"leaflet/{name}")
        assert source is not None
        (folder / name).write_bytes(source.read_bytes())
    return {
        "features": len(lamps),
        "bytes": len(html.encode()),
        "build_s": time.monotonic() - started,
    }


def naive_view(browser: Any, base: str, timeout_s: float, outside: list[str]) -> dict[str, Any]:
    """How far chromium gets with the naive page before the timeout."""
    context = browser.new_context(viewport=VIEWPORT)
    context.on("request", lambda r: None if is_local(r.url) else outside.append(r.url))
    page = context.new_page()
    started = time.monotonic()
    state: dict[str, Any] = {"dom_s": None, "drawn_s": None, "error": None}
    try:
        page.goto(f"{base}/index.html", wait_until="commit", timeout=timeout_s * 1000)
        left = max(1.0, timeout_s - (time.monotonic() - started))
        page.wait_for_load_state("domcontentloaded", timeout=left * 1000)
        state["dom_s"] = time.monotonic() - started
        left = max(1.0, timeout_s - (time.monotonic() - started))
        page.wait_for_function(
            "() => document.querySelector('.leaflet-overlay-pane canvas') !== null",
            timeout=left * 1000,
        )
        state["drawn_s"] = time.monotonic() - started
    except Exception as exc:  # a timeout or a crashed renderer is the finding
        state["error"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}"
    state["elapsed_s"] = time.monotonic() - started
    try:
        context.close()
    except Exception as exc:  # a crashed renderer cannot always be closed cleanly
        state["error"] = (state["error"] or "") + f" (close: {exc.__class__.__name__})"
    return state


# --- report -------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        if found:
            cpu = found.group(1).strip()
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    chromium = subprocess.run(
        ["/usr/bin/chromium", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {chromium}; "
        f"load average at the end {load} (other work on the machine shares the 2 cores)"
    )


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} (max {max(values):.0f})"


def write_doc(section: str) -> None:
    DOC.parent.mkdir(exist_ok=True)
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = (
        pattern.sub(lambda _: section, old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + section
    )
    DOC.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="civic_gis_bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    config = Settings().cluster()
    cluster.ensure_running(config)
    url = cluster.url(config, args.database)
    engine = make_engine(url)
    with engine.connect() as conn:
        lamps = int(conn.execute(text("SELECT count(*) FROM street_lamps")).scalar_one())
        grids = int(
            conn.execute(text("SELECT count(*) FROM grids WHERE level = 'grid'")).scalar_one()
        )
    grid, grid_lamps = busiest_grid(engine)
    print(
        f"{args.database}: {lamps} lamps, {grids} grids; street view: {grid} ({grid_lamps} lamps)"
    )

    outside: list[str] = []
    city: list[dict[str, Any]] = []
    street: list[dict[str, Any]] = []
    moves: list[dict[str, float]] = []
    with service(url) as base, sync_playwright() as playwright:
        browser = launch(playwright)
        for _ in range(args.runs):
            for target, out in ((f"{base}/map", city), (f"{base}/map/grids/{grid}", street)):
                result = first_view(browser, target, outside)
                if out is street:
                    moves.append(pan_and_zoom(result["page"]))
                result.pop("page")
                result.pop("context").close()
                out.append(result)
                print(target.removeprefix(base), result)
        naive_dir = ROOT / "var" / "bench-naive-map"
        naive = naive_page(engine, naive_dir)
        print("naive page", naive)
        with static_server(naive_dir) as naive_base:
            naive.update(naive_view(browser, naive_base, args.naive_timeout, outside))
        print("naive view", naive)
        browser.close()
    engine.dispose()

    city_ms = [r["lamps"] for r in city]
    street_ms = [r["lamps"] for r in street]
    rows = [
        "| view | zoom | lamps drawn (ms, median) | whole view ready (ms) | requests | KB |",
        "|---|---|---|---|---|---|",
        f"| city (`/map`, {lamps:,} lamps; a symbol per grid cell below z12) "
        f"| {city[0]['zoom']} | "
        f"{_ms(city_ms)} | {_ms([r['ready'] for r in city])} | {city[0]['requests']} | "
        f"{city[0]['bytes'] / 1024:.0f} |",
        f"| street (`/map/grids/{grid}`, {grid_lamps} lamps in the grid) | {street[0]['zoom']} | "
        f"{_ms(street_ms)} | {_ms([r['ready'] for r in street])} | {street[0]['requests']} | "
        f"{street[0]['bytes'] / 1024:.0f} |",
    ]
    verdict = "met" if max(city_ms + street_ms) <= TARGET_MS else "NOT met"
    naive_line = (
        f"naive folium map: {naive['features']:,} lamps inlined, "
        f"page {naive['bytes'] / 2**20:.0f} MB (built in {naive['build_s']:.0f} s); "
        "DOMContentLoaded "
        + (f"after {naive['dom_s']:.1f} s" if naive["dom_s"] is not None else "never")
        + ", lamps drawn "
        + (f"after {naive['drawn_s']:.1f} s" if naive["drawn_s"] is not None else "never")
        + f" (gave up at {args.naive_timeout:.0f} s"
        + (f"; {naive['error']}" if naive["error"] else "")
        + ")."
    )
    section = "\n".join(
        [
            SECTION,
            "",
            f"Date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}.",
            f"Command: `.venv/bin/python -m bench.map_first_view --database {args.database} "
            f"--runs {args.runs} --naive-timeout {args.naive_timeout:.0f}`.",
            f"Data: `{args.database}`, {lamps:,} lamps, {grids:,} grid cells. Headless chromium "
            f"{VIEWPORT['width']}x{VIEWPORT['height']}, a fresh context (empty cache) per run; "
            "service: one uvicorn process on loopback.",
            "",
            *rows,
            "",
            f"Target ≤ {TARGET_MS} ms to the first drawn lamp layer: {verdict}. Pan/zoom after the "
            f"street view (6 pans, zoom out, zoom in, each until drawn): "
            f"{statistics.median([m['seconds'] for m in moves]):.1f} s in all, longest main-thread "
            f"task {max(m['longest_ms'] for m in moves):.0f} ms.",
            "",
            naive_line,
            "",
            f"Requests to other hosts: {len(outside)}.",
            "",
        ]
    )
    print(section)
    if not args.no_write:
        write_doc(section)


if __name__ == "__main__":
    main()
