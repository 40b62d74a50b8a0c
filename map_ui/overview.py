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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, text

from layers.catalog import GeometryKind, LayerSpec
from layers.tiles import WORST_FIRST

COORDINATE_DIGITS = 6
"""Decimals of the cell centroids (about 0.1 m): a symbol per cell needs no more, and the
overview of a large city stays a few hundred kilobytes."""
OVERVIEW_BELOW_ZOOM = 12
"""Map zooms below this draw point layers from the overview (512-px tiles of z10 and less)."""
TTL_S = 60.0
"""Age after which an overview is rebuilt: the tiles' own `max-age` (edits show within it)."""


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
                    "geometry": {
                        "type": "Point",
                        "coordinates": [
                            round(row["lon"], COORDINATE_DIGITS),
                            round(row["lat"], COORDINATE_DIGITS),
                        ],
                    },
                    "properties": props,
                }
            )
    return {"type": "FeatureCollection", "features": features}


@dataclass
class _Entry:
    made: float
    body: bytes


class OverviewCache:
    """Overviews as JSON bytes: built once, then served at once and rebuilt in the background.

    An overview older than `ttl_s` is still answered (it is a city-zoom summary: counts per
    grid cell) while one background thread rebuilds it, so no map view waits for the
    aggregate except the very first; `prefetch` starts that first build when a map page is
    served, a second before the page's script asks for it.
    """

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, layer: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(layer, threading.Lock())

    def _build(self, engine: Engine, spec: LayerSpec) -> _Entry:
        entry = _Entry(time.monotonic(), orjson.dumps(overview(engine, spec)))
        self._entries[spec.id] = entry
        return entry

    def _refresh_later(self, engine: Engine, spec: LayerSpec) -> None:
        """Rebuild in a daemon thread unless a build of this layer is already running."""
        lock = self._lock(spec.id)
        if not lock.acquire(blocking=False):
            return

        def run() -> None:
            try:
                self._build(engine, spec)
            finally:
                lock.release()

        threading.Thread(target=run, name=f"overview-{spec.id}", daemon=True).start()

    def get(self, engine: Engine, spec: LayerSpec) -> bytes:
        """The layer's overview JSON: the one in hand (refreshed behind it when stale), or
        the first one, built now (or waited for, if a prefetch is building it)."""
        entry = self._entries.get(spec.id)
        if entry is not None:
            if time.monotonic() - entry.made > self.ttl_s:
                self._refresh_later(engine, spec)
            return entry.body
        with self._lock(spec.id):
            entry = self._entries.get(spec.id)
            return (entry or self._build(engine, spec)).body

    def prefetch(self, engine: Engine, specs: Iterable[LayerSpec]) -> None:
        """Start building the overviews not yet in hand, without waiting."""
        for spec in specs:
            if spec.id not in self._entries:
                self._refresh_later(engine, spec)
