"""The map's GCJ-02 shift (map_ui/static/gcj02.js) agrees with data/crs.py, run in node.

Data stay in WGS-84; only the display moves, so the browser's formula must be the same
one the import path pins against published vectors.
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import numpy as np
import pytest

from data.crs import gcj02_to_wgs84, wgs84_to_gcj02
from map_ui import assets
from tests.map_ui.conftest import node

SCRIPT = assets.resolve("civic/gcj02.js")


def run_js(body: str, data: Any) -> Any:
    """Evaluate `body` (which sees `g`, the module, and `data`) in node; its JSON result."""
    program = (
        f"const g = require({json.dumps(str(SCRIPT))});"
        f"const data = {json.dumps(data)};"
        f"process.stdout.write(JSON.stringify((() => {{ {body} }})()));"
    )
    out = subprocess.run([node(), "-e", program], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _points() -> list[list[float]]:
    # Mudanjiang, Beijing, Shanghai, Urumqi, Sanya, Harbin, and a lattice over the city.
    named = [[129.6, 44.58], [116.39, 39.9], [121.47, 31.23], [87.6, 43.8], [109.5, 18.25]]
    named.append([126.63, 45.75])
    lattice = [[129.45 + 0.03 * i, 44.45 + 0.03 * j] for i in range(10) for j in range(10)]
    return named + lattice


def test_forward_shift_matches_the_python_formula() -> None:
    points = _points()
    js = np.array(run_js("return data.map(p => g.wgs84ToGcj02(p[0], p[1]));", points))
    lon, lat = wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points])
    assert np.max(np.abs(js[:, 0] - lon)) < 1e-11
    assert np.max(np.abs(js[:, 1] - lat)) < 1e-11
    # the shift is hundreds of metres: 129.6E 44.58N moves ~560 m east, ~215 m north
    assert 0.006 < js[0, 0] - 129.6 < 0.008 and 0.0015 < js[0, 1] - 44.58 < 0.0025


def test_inverse_is_iterated_to_below_a_millimetre() -> None:
    points = _points()
    gcj = np.column_stack(wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points]))
    back = np.array(run_js("return data.map(p => g.gcj02ToWgs84(p[0], p[1]));", gcj.tolist()))
    assert np.max(np.abs(back - np.array(points))) < 1e-8  # ~1 mm
    lon, lat = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    assert np.max(np.abs(back[:, 0] - lon)) < 1e-9 and np.max(np.abs(back[:, 1] - lat)) < 1e-9


def test_points_outside_china_are_not_shifted() -> None:
    out = run_js("return [g.wgs84ToGcj02(2.35, 48.85), g.gcj02ToWgs84(-74.0, 40.7)];", None)
    assert out == [[2.35, 48.85], [-74.0, 40.7]]


def test_vector_tile_shift_is_within_a_quarter_pixel_of_the_exact_shift() -> None:
    """Tiles are shifted by a lattice-interpolated offset: check it against the exact one
    at every zoom the map uses, over the tile and its buffer, around the demo city."""
    worst = run_js(
        """
        const out = {};
        for (let z = 2; z <= 22; z++) {
          let worst = 0;
          for (const [lon, lat] of data) {
            const T = 512;
            const [px, py] = g.lonLatToPixel(lon, lat, z);
            const x = Math.floor(px / T), y = Math.floor(py / T);
            const field = g.tileOffsetField(z, x, y, T);
            for (let i = -2; i <= 34; i++) for (let j = -2; j <= 34; j++) {
              const exact = g.pixelOffset(x * T + i * T / 32, y * T + j * T / 32, z);
              const approx = field(i / 32, j / 32);
              worst = Math.max(worst, Math.hypot(exact[0] - approx[0], exact[1] - approx[1]));
            }
          }
          out[z] = worst;
        }
        return out;
        """,
        [[129.6, 44.58], [129.31, 44.33], [116.39, 39.9]],
    )
    assert max(worst.values()) < 0.3, worst
    assert max(v for z, v in worst.items() if int(z) >= 8) < 0.25, worst
    assert worst["18"] < 0.01


def _pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Leaflet's pixel frame at zoom z (the world is 256 * 2^z px), independently of the JS."""
    world = 256 * 2**z
    s = math.sin(math.radians(lat))
    return (lon / 360 + 0.5) * world, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * world


def _lonlat(px: float, py: float, z: int) -> tuple[float, float]:
    world = 256 * 2**z
    return (px / world - 0.5) * 360, math.degrees(
        math.atan(math.sinh(math.pi * (1 - 2 * py / world)))
    )


def test_a_decoded_tile_is_moved_to_the_gcj02_position() -> None:
    """shiftVectorTile moves a vertex of a 512-px VectorGrid tile (extent 4096) at map zoom 16
    by the GCJ-02 offset computed here from data.crs: the right frame and the right units."""
    z, size, extent = 16, 512, 4096
    px, py = _pixel(129.6, 44.58, z)
    x, y = math.floor(px / size), math.floor(py / size)
    centre = (x * size + size / 2, y * size + size / 2)
    lon, lat = _lonlat(*centre, z)
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    gx, gy = _pixel(glon, glat, z)
    expected = ((gx - centre[0]) * extent / size, (gy - centre[1]) * extent / size)
    moved = run_js(
        """
        const [z, x, y] = data;
        const tile = {layers: {street_lamps: {extent: 4096, features: [
          {geometry: [[{x: 2048, y: 2048}]]}, {geometry: [[{x: 0, y: 0}, {x: 4096, y: 4096}]]}]}}};
        g.shiftVectorTile(tile, {z, x, y}, 512);
        const p = tile.layers.street_lamps.features[0].geometry[0][0];
        return [p.x - 2048, p.y - 2048];
        """,
        [z, x, y],
    )
    assert moved == pytest.approx(list(expected), abs=0.5)  # half an extent unit: 1/16 px
    # 560 m east and 215 m north at z16 (1.7 m/px): ~330 px, ~2600 extent units east
    assert 2000 < moved[0] < 3200 and -1600 < moved[1] < -800
