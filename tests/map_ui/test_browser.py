"""The map in a real browser (Debian chromium), on the tiny city, with no way off the machine.

Every page is opened with every non-loopback request aborted; each test ends by checking
that nothing was blocked, nothing failed and the page threw no error (conftest.open_map).
Screenshots go to test-artifacts/map_ui/.

Tiny city (tests/tiny_city.py): lamps L-0000..L-0011 every 30 m along the main road at
y = 104 m, L-0003 unlit; west grid 231005001001001 (officer 王丹), east grid ...002
(officer 齐妍爽); bins B-1 (good, west) and B-2 (damaged, east); the internet café V-1
150 m east of school SCH-1.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from shapely.geometry import Point, box

from data.crs import wgs84_to_gcj02
from layers.catalog import BINS, COLLECTIONS, STREET_LAMPS
from tests.map_ui.conftest import MapPage
from tests.tiny_city import GRID_EAST, GRID_WEST, wgs

pytestmark = pytest.mark.slow

OpenMap = Callable[..., MapPage]

PAINTED = """
(id) => {
  const layer = civicMap.layers[id];
  let n = 0;
  for (const key in layer._tiles) {
    const el = layer._tiles[key].el;
    if (!el.getContext) continue;
    const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  }
  return n;
}
"""

COLOURS_AT = """
([id, lat, lng, r]) => {
  // The opaque colours a layer's canvas tiles hold within r px of a point on the map.
  const map = civicMap.map;
  const p = map.latLngToContainerPoint([lat, lng]);
  const origin = map.getContainer().getBoundingClientRect();
  const x = origin.left + p.x, y = origin.top + p.y;
  const out = new Set();
  const layer = civicMap.layers[id];
  for (const key in layer._tiles) {
    const el = layer._tiles[key].el;
    const rect = el.getBoundingClientRect();
    const outside = x < rect.left - r || x > rect.right + r;
    if (outside || y < rect.top - r || y > rect.bottom + r) continue;
    const sx = el.width / rect.width, sy = el.height / rect.height;
    const ctx = el.getContext('2d');
    for (let dx = -r; dx <= r; dx++) for (let dy = -r; dy <= r; dy++) {
      const cx = Math.round((x + dx - rect.left) * sx), cy = Math.round((y + dy - rect.top) * sy);
      if (cx < 0 || cy < 0 || cx >= el.width || cy >= el.height) continue;
      const d = ctx.getImageData(cx, cy, 1, 1).data;
      // fills are drawn at 0.95 opacity: keep nearly opaque pixels (colour un-premultiplied)
      if (d[3] > 200) out.add([d[0], d[1], d[2]].join(','));
    }
  }
  return [...out];
}
"""


def has_colour(colours: list[str], hex_colour: str, tolerance: int = 4) -> bool:
    """Whether a colour (#rrggbb) is among `COLOURS_AT`'s "r,g,b" strings, within rounding."""
    want = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    for colour in colours:
        got = [int(v) for v in colour.split(",")]
        if all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True)):
            return True
    return False


def lamp_latlng(i: int) -> tuple[float, float]:
    p = wgs(Point(15 + 30 * i, 104))
    return p.y, p.x


def screen_point(page: MapPage, lat: float, lng: float) -> tuple[float, float]:
    x, y = page.evaluate(
        """([lat, lng]) => {
          const p = civicMap.map.latLngToContainerPoint([lat, lng]);
          const r = civicMap.map.getContainer().getBoundingClientRect();
          return [r.left + p.x, r.top + p.y];
        }""",
        [lat, lng],
    )
    return float(x), float(y)


def wait_drawn(page: MapPage, layer: str) -> None:
    page.page.wait_for_function(
        """(id) => { const l = civicMap.layers[id];
                     return civicMap.map.hasLayer(l) && !l._loading; }""",
        arg=layer,
        timeout=20_000,
    )


def toggle(page: MapPage, label: str) -> None:
    """Click the layer control's box named exactly `label`, or starting with it when it ends
    in '…' (check names are the rules' own)."""
    name: str | re.Pattern[str] = label
    if label.endswith("…"):
        name = re.compile("^" + re.escape(label[:-1]))
    page.page.get_by_role("checkbox", name=name, exact=True).click()


def popup_text(page: MapPage) -> str:
    popup = page.page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=15_000)
    text: str = popup.inner_text()
    return text


# --- the whole map -----------------------------------------------------------------


def test_the_map_opens_offline_with_every_layer_in_the_control(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open("/map")
    names = page.page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    names = [n.strip() for n in names]
    for spec in COLLECTIONS:
        assert spec.zh in names, spec.id
    assert "网格编码与网格员" in names
    assert any(n.startswith("检查: 亮灯率") for n in names)
    assert page.evaluate(PAINTED, "street_lamps") > 0
    assert page.evaluate(PAINTED, "bins") == 0  # off by default
    requested = [u for u in page.log.requests if "/map/static/" in u]
    assert any("leaflet.js" in u for u in requested)
    assert any("Leaflet.VectorGrid" in u for u in requested)
    page.shot(artifacts, "map_zh")


def test_lamps_are_drawn_in_their_catalog_status_colours(open_map: OpenMap, server: str) -> None:
    page = open_map(server)
    page.open(f"/map/grids/{GRID_WEST}")
    status = STREET_LAMPS.field("status")
    unlit = page.evaluate(COLOURS_AT, ["street_lamps", *lamp_latlng(3), 2])
    lit = page.evaluate(COLOURS_AT, ["street_lamps", *lamp_latlng(2), 2])
    assert has_colour(unlit, status.choice("unlit").color)
    assert has_colour(lit, status.choice("lit").color)
    assert not has_colour(lit, status.choice("unlit").color)


def test_switching_bins_on_draws_them(open_map: OpenMap, server: str, artifacts: Path) -> None:
    page = open_map(server)
    page.open("/map")
    assert page.evaluate(PAINTED, "bins") == 0
    toggle(page, BINS.zh)
    wait_drawn(page, "bins")
    assert page.evaluate(PAINTED, "bins") > 20
    b2 = wgs(Point(250, 150))
    colours = page.evaluate(COLOURS_AT, ["bins", b2.y, b2.x, 2])
    assert has_colour(colours, BINS.field("condition").choice("damaged").color)
    page.shot(artifacts, "bins_on")
    toggle(page, BINS.zh)
    assert page.evaluate("() => civicMap.map.hasLayer(civicMap.layers.bins)") is False


def test_at_city_zoom_lamps_are_drawn_per_grid_cell_then_one_by_one(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open("/map")
    page.evaluate("() => civicMap.map.setZoom(10, {animate: false})")
    page.page.wait_for_function(
        "() => civicMap.groups.street_lamps.overview"
        " && civicMap.map.hasLayer(civicMap.groups.street_lamps.overview)"
    )
    assert page.evaluate("() => civicMap.map.hasLayer(civicMap.layers.street_lamps)") is False
    counts = page.evaluate(
        "() => civicMap.groups.street_lamps.overview.getLayers()"
        ".map(l => l.feature.properties.count).sort()"
    )
    assert counts == [5, 7]
    page.shot(artifacts, "city_zoom_overview")
    page.evaluate("() => civicMap.map.setZoom(17, {animate: false})")
    wait_drawn(page, "street_lamps")
    assert page.evaluate(PAINTED, "street_lamps") > 0
    assert (
        page.evaluate("() => civicMap.map.hasLayer(civicMap.groups.street_lamps.overview)") is False
    )


def test_clicking_a_lamp_shows_its_attributes_in_chinese(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open(f"/map/grids/{GRID_WEST}")
    page.page.mouse.click(*screen_point(page, *lamp_latlng(3)))
    text = popup_text(page)
    assert "L-0003" in text
    assert re.search(r"状态\s+不亮", text), text
    assert re.search(r"道路\s*|所在道路\s+RD-1", text), text
    link = page.page.locator(".leaflet-popup-content a", has_text="API").get_attribute("href")
    assert link is not None and re.fullmatch(r"/collections/street_lamps/items/\d+", link)
    item = httpx.get(server + link).json()
    assert item["properties"]["code"] == "L-0003"
    history = page.page.locator(".leaflet-popup-content a", has_text="历史").get_attribute("href")
    assert history == link + "/history"
    page.shot(artifacts, "lamp_popup")


def test_the_grid_page_zooms_to_the_grid_with_its_code_and_officer(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open(f"/map/grids/{GRID_WEST}")
    grid = wgs(box(0, 0, 200, 200))
    west, south, east, north = grid.bounds
    view = page.evaluate(
        """() => { const b = civicMap.map.getBounds();
                   return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth(),
                           civicMap.map.getZoom()]; }"""
    )
    assert view[0] <= west and view[1] <= south and view[2] >= east and view[3] >= north
    # fitted: the view is not much larger than the 200 m grid
    assert (view[2] - view[0]) < 6 * (east - west)
    assert view[4] >= 17
    labels = page.page.locator(".civic-grid-label")
    labels.first.wait_for(timeout=10_000)
    texts = " ".join(labels.all_inner_texts())
    assert GRID_WEST in texts and "王丹" in texts
    page.shot(artifacts, "grid_west")


def test_search_by_code_finds_lamps_grids_and_buildings(open_map: OpenMap, server: str) -> None:
    page = open_map(server)
    page.open("/map")
    search = page.page.locator("#civic-search input")
    search.fill("L-0007")
    search.press("Enter")
    text = popup_text(page)
    assert "L-0007" in text and "亮灯" in text
    lat, lng = lamp_latlng(7)
    # centred on the lamp (the popup may pan the map a little to fit itself)
    assert page.evaluate("(p) => civicMap.map.getBounds().pad(-0.3).contains(p)", [lat, lng])
    assert page.evaluate("() => civicMap.map.getZoom()") >= 18

    search.fill(GRID_EAST)
    search.press("Enter")
    page.page.wait_for_function(
        "(code) => document.querySelector('#civic-search-result').textContent.includes(code)",
        arg=GRID_EAST,
    )
    east = wgs(box(200, 0, 400, 200))
    page.page.wait_for_function(
        """([w, s, e, n]) => civicMap.map.getBounds().contains([[s, w], [n, e]])""",
        arg=list(east.bounds),
    )
    assert "齐妍爽" in popup_text(page)

    search.fill("BLD-1")
    search.press("Enter")
    page.page.wait_for_function(
        "() => (document.querySelector('.leaflet-popup-content') || {}).textContent"
        " && document.querySelector('.leaflet-popup-content').textContent.includes('BLD-1')"
    )
    search.fill("L-9999")
    search.press("Enter")
    page.page.wait_for_function(
        "() => document.querySelector('#civic-search-result').textContent.includes('未找到')"
    )


def test_zone_violation_evidence_shows_the_line_and_its_distance(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open(f"/map/grids/{GRID_EAST}")
    toggle(page, "检查: 学校周边…")
    label = page.page.locator(".civic-distance")
    label.first.wait_for(timeout=20_000)
    metres = float(re.sub(r"[^0-9.]", "", label.first.inner_text()))
    assert 149.5 < metres < 150.5  # V-1 is 150 m east of the campus
    assert "米" in label.first.inner_text()
    lines = page.page.locator(".leaflet-overlay-pane path.leaflet-interactive")
    assert lines.count() >= 1
    page.shot(artifacts, "school_zone_violation")


def test_lighting_rate_choropleth_colours_each_grid_with_a_legend(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server)
    page.open("/map")
    page.page.select_option("#civic-choropleth-rule", "lamp-lighting-rate")
    page.page.wait_for_function("() => civicMap.choropleth && civicMap.choropleth.rule")
    cells = page.evaluate("() => civicMap.choropleth.cells")
    assert cells[GRID_WEST]["figure"] == pytest.approx(6 / 7, abs=1e-6)
    assert cells[GRID_EAST]["figure"] == pytest.approx(1.0)
    assert cells[GRID_WEST]["passed"] is False and cells[GRID_EAST]["passed"] is True
    legend = page.page.locator("#civic-choropleth-legend").inner_text()
    assert "亮灯率" in legend and "85.7%" in legend and "100.0%" in legend
    page.page.wait_for_function(
        "() => civicMap.map.hasLayer(civicMap.choropleth.layer)"
        " && !civicMap.choropleth.layer._loading"
    )
    page.shot(artifacts, "choropleth_lighting_rate")


def test_the_english_map(open_map: OpenMap, server: str, artifacts: Path) -> None:
    page = open_map(server)
    page.open(f"/map/grids/{GRID_WEST}?lang=en")
    names = page.page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert "Street lamps" in [n.strip() for n in names]
    page.page.mouse.click(*screen_point(page, *lamp_latlng(3)))
    text = popup_text(page)
    assert re.search(r"status\s+unlit", text), text
    page.shot(artifacts, "map_en")


# --- GCJ-02 basemap -------------------------------------------------------------------


def test_with_a_gcj02_basemap_overlays_are_shifted_for_display(
    open_map: OpenMap, gcj_server: str, artifacts: Path
) -> None:
    page = open_map(gcj_server)
    page.open(f"/map/grids/{GRID_WEST}")
    assert any("blank-tile.svg" in u for u in page.log.requests)  # the basemap is drawn
    lat, lng = lamp_latlng(3)
    glng, glat = (float(v) for v in wgs84_to_gcj02(lng, lat))
    # the tile vertices are moved by ~560 m east and ~215 m north, to the GCJ-02 position
    unlit = STREET_LAMPS.field("status").choice("unlit").color
    assert has_colour(page.evaluate(COLOURS_AT, ["street_lamps", glat, glng, 2]), unlit)
    outline = page.evaluate(
        "() => { const b = civicMap.gridOutline.getBounds(); return [b.getWest(), b.getSouth()]; }"
    )
    ring = wgs(box(0, 0, 200, 200)).exterior.coords
    glons, glats = wgs84_to_gcj02([c[0] for c in ring], [c[1] for c in ring])
    assert outline == pytest.approx([float(min(glons)), float(min(glats))], abs=1e-9)
    # clicking the drawn lamp finds it: the click is converted back to WGS-84 for the API
    page.page.mouse.click(*screen_point(page, glat, glng))
    assert "L-0003" in popup_text(page)
    page.shot(artifacts, "gcj02_basemap")


# --- print sheet ---------------------------------------------------------------------


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


def test_the_print_sheet_renders_and_prints_a4_landscape(
    open_map: OpenMap, server: str, artifacts: Path
) -> None:
    page = open_map(server, 1123, 794)
    page.open(f"/map/grids/{GRID_WEST}/print")
    assert page.page.locator(".civic-north svg").count() == 1
    assert page.page.locator(".leaflet-control-scale-line").inner_text().strip() != ""
    assert page.evaluate(PAINTED, "street_lamps") > 0
    register = page.page.locator(".register tr[data-layer='street_lamps']")
    assert register.count() == 7
    page.shot(artifacts, "print_sheet")
    pdf = page.page.pdf(format="A4", landscape=True, print_background=True)
    (artifacts / "print_sheet.pdf").write_bytes(pdf)
    pages = pdf_pages(pdf)
    assert len(pages) >= 2  # the map sheet, then the register
    for width, height in pages:
        assert width == pytest.approx(841.89, abs=1.5) and height == pytest.approx(595.28, abs=1.5)


# --- uploads (the server side is another issue: tolerate its absence) ----------------

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="civic-gis map test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="{lat1:.8f}" lon="{lon1:.8f}"><name>巡查点1</name><time>2026-11-26T08:00:00Z</time></wpt>
  <wpt lat="{lat2:.8f}" lon="{lon2:.8f}"><name>巡查点2</name><time>2026-11-26T08:05:00Z</time></wpt>
</gpx>
"""


def uploads_status(base: str) -> int:
    return httpx.post(f"{base}/uploads", timeout=30).status_code


def gpx_file() -> dict[str, Any]:
    a, b = wgs(Point(120, 60)), wgs(Point(160, 60))
    text = GPX.format(lat1=a.y, lon1=a.x, lat2=b.y, lon2=b.x)
    return {"name": "patrol.gpx", "mimeType": "application/gpx+xml", "buffer": text.encode()}


def test_uploading_a_gpx_shows_its_points(
    open_map: OpenMap, server: str, city_engine: Any, artifacts: Path
) -> None:
    """An inspector of the west grid, signed in (a token for the tab), uploads two waypoints."""
    assert uploads_status(server) not in (404, 405), "POST /uploads must exist"
    from gis_api.auth.users import add_user

    with city_engine.begin() as conn:
        token = add_user(conn, f"map-inspector-{uuid.uuid4().hex[:6]}", "inspector", [GRID_WEST])
    page = open_map(server)
    page.page.add_init_script(f"sessionStorage.setItem('civic-gis-token', {token!r});")
    page.open("/map")
    page.page.click("#civic-upload-toggle")
    page.page.set_input_files("#civic-upload input[type=file]", files=[gpx_file()])
    page.page.select_option("#civic-upload select[name=crs]", "EPSG:4326")
    page.page.click("#civic-upload button[type=submit]")
    page.page.wait_for_function(
        "() => document.querySelector('.civic-upload-status').textContent.includes('·')"
        " || document.querySelector('.civic-upload-status').textContent.includes('HTTP')",
        timeout=30_000,
    )
    report = page.page.locator(".civic-upload-report").inner_text()
    assert '"points_accepted": 2' in report, report
    points = page.evaluate(
        "() => { let n = 0; civicMap.uploads.eachLayer(g => g.eachLayer(() => n++)); return n; }"
    )
    assert points == 2
    drawn = page.evaluate(
        "() => { const out = []; civicMap.uploads.eachLayer(g => g.eachLayer("
        "l => out.push([l.getLatLng().lat, l.getLatLng().lng]))); return out.sort(); }"
    )
    a, b = wgs(Point(120, 60)), wgs(Point(160, 60))
    want = sorted([[a.y, a.x], [b.y, b.x]])
    assert [v for p in drawn for v in p] == pytest.approx([v for p in want for v in p], abs=1e-7)
    page.shot(artifacts, "upload_gpx")


# --- civic-gis print-grid -------------------------------------------------------------


def test_print_grid_command_writes_the_sheet_as_an_a4_landscape_pdf(
    city_url: str, tmp_path: Path, artifacts: Path
) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "grid.pdf"
    # reads closed (the default): the command serves its own browser
    env = {**os.environ, "CIVIC_GIS_DATABASE_URL": city_url}
    env.pop("CIVIC_GIS_AUTH_PUBLIC_READS", None)
    done = subprocess.run(
        [sys.executable, "-m", "gis_api.cli", "print-grid", GRID_WEST, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF")
    pages = pdf_pages(pdf)
    assert len(pages) >= 2
    assert all(
        w == pytest.approx(841.89, abs=1.5) and h == pytest.approx(595.28, abs=1.5)
        for w, h in pages
    )
    (artifacts / "print_grid_command.pdf").write_bytes(pdf)
    missing = subprocess.run(
        [sys.executable, "-m", "gis_api.cli", "print-grid", "999999999999999", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert missing.returncode == 2 and "999999999999999" in missing.stderr
