"""Decode Mapbox Vector Tiles and summarise them as JSON (run by the peers venv's Python).

    var/bench-peers-venv/bin/python bench/mvt_count.py TILE.mvt [...]

For each file: per layer, the number of features, how many of them lie inside the
tile (points whose coordinates are within [0, extent); other geometries are counted as
inside), the property names and the sum of a `count` property (thinned cells). It
imports nothing from the project: `mapbox-vector-tile` lives in the peers venv only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mapbox_vector_tile


def _inside(geometry: dict[str, Any], extent: int) -> bool:
    if geometry.get("type") != "Point":
        return True
    x, y = geometry["coordinates"][:2]
    return bool(0 <= x < extent and 0 <= y < extent)


def summarise(data: bytes) -> dict[str, Any]:
    if not data:
        return {"layers": {}, "features": 0, "inside": 0, "keys": []}
    tile = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    layers: dict[str, Any] = {}
    total = inside = 0
    keys: set[str] = set()
    for name, layer in tile.items():
        extent = int(layer.get("extent", 4096))
        features = layer.get("features", [])
        names: set[str] = set()
        counted = 0
        n_inside = 0
        for feature in features:
            props = feature.get("properties", {})
            names.update(props)
            if isinstance(props.get("count"), int | float):
                counted += int(props["count"])
            if _inside(feature.get("geometry", {}), extent):
                n_inside += 1
        layers[name] = {
            "features": len(features),
            "inside": n_inside,
            "keys": sorted(names),
            "count_sum": counted,
        }
        total += len(features)
        inside += n_inside
        keys |= names
    return {"layers": layers, "features": total, "inside": inside, "keys": sorted(keys)}


def main(paths: list[str]) -> None:
    print(json.dumps({p: summarise(Path(p).read_bytes()) for p in paths}))


if __name__ == "__main__":
    main(sys.argv[1:])
