"""City-zoom overview of the point layers: one symbol per grid cell, kept for a minute.

Why: below about zoom 12 a vector tile of a point layer aggregates hundreds of thousands
of points on the fly (a z9 lamp tile of the 638,000-lamp demo city takes ~7 s of database
time), so a city view drawn from tiles cannot appear in 2 s. The overview groups each
point layer by grid cell in one indexed-free aggregate (~0.3 s for 638,000 lamps), and the
map shows it below `OVERVIEW_BELOW_ZOOM` instead of the tiles. Each cell is a point at the
centroid of its members carrying `count`, the cell's `grid_code` and the style value: the
worst for layers whose choices run from good to bad (`layers.tiles.WORST_FIRST`, as the
tiles do), else the most frequent. Points outside every grid form one more cell.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, text

from layers.catalog import GeometryKind, LayerSpec
from layers.tiles import WORST_FIRST

OVERVIEW_BELOW_ZOOM = 12
"""Map zooms below this draw point layers from the overview (512-px tiles of z10 and less)."""
TTL_S = 60.0
"""How long an overview is reused: the tiles' own `max-age` (data edited now show within it)."""


def has_overview(spec: LayerSpec) -> bool:
    """Point layers that belong to grids have an overview."""
    return spec.geometry is GeometryKind.POINT and spec.in_grid


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def overview_sql(spec: LayerSpec) -> tuple[str, dict[str, Any]]:
    """One aggregate over the layer: per grid cell, count, style value and centroid."""
    params: dict[str, Any] = {}
    style = "NULL"
    if spec.style_field is not None:
        field = spec.field(spec.style_field)
        params["keys"] = list(field.choice_keys())
        keys = "CAST(:keys AS text[])"
        position = f"array_position({keys}, t.{_quote(field.name)})"
        summary = (
            f"max({position})"
            if spec.id in WORST_FIRST
            else f"mode() WITHIN GROUP (ORDER BY {position})"
        )
        style = f"({keys})[{summary}]"
    # Group on the integer grid_id first, then name the few thousand cells.
    sql = (
        "SELECT g.code AS grid_code, a.count, a.value, a.lon, a.lat FROM ("
        f"SELECT t.grid_id, count(*)::integer AS count, {style} AS value,"
        " avg(ST_X(t.geom)) AS lon, avg(ST_Y(t.geom)) AS lat"
        f" FROM {_quote(spec.table)} AS t GROUP BY t.grid_id"
        ") AS a LEFT JOIN grids AS g ON g.id = a.grid_id ORDER BY g.code"
    )
    return sql, params


def overview(engine: Engine, spec: LayerSpec) -> dict[str, Any]:
    """The layer's overview as a GeoJSON FeatureCollection."""
    sql, params = overview_sql(spec)
    features = []
    with engine.connect() as conn:
        for row in conn.execute(text(sql), params).mappings():
            props: dict[str, Any] = {"grid_code": row["grid_code"], "count": row["count"]}
            if spec.style_field is not None:
                props[spec.style_field] = row["value"]
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                    "properties": props,
                }
            )
    return {"type": "FeatureCollection", "features": features}


@dataclass
class _Entry:
    made: float
    body: bytes


class OverviewCache:
    """Overviews as JSON bytes, rebuilt when older than `TTL_S` (one build at a time per layer)."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, engine: Engine, spec: LayerSpec) -> bytes:
        """The layer's overview JSON, fresh within the TTL."""
        with self._guard:
            lock = self._locks.setdefault(spec.id, threading.Lock())
        with lock:
            entry = self._entries.get(spec.id)
            now = time.monotonic()
            if entry is None or now - entry.made > self.ttl_s:
                entry = _Entry(now, orjson.dumps(overview(engine, spec)))
                self._entries[spec.id] = entry
            return entry.body
