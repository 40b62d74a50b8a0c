"""Where features lie in the grid hierarchy, for grid-scoped rights.

A feature belongs to the grid holding its point-on-surface: the same rule
that sets `grid_id` (migration 0002), so the inspector allowed to change an
asset is the one who answers for it, and a road crossing two grids belongs
to one of them. A user's grid code may be of any level: an inspector bound
to a community may change everything in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

_PLACEMENTS = text(
    """
    SELECT g.ord, ST_X(g.p) AS lon, ST_Y(g.p) AS lat,
           EXISTS (
               SELECT 1 FROM grids m
               WHERE m.code = ANY (CAST(:codes AS text[])) AND ST_Intersects(m.geom, g.p)
           ) AS allowed,
           c.code, c.name
    FROM (
        SELECT t.ord, ST_PointOnSurface(ST_GeomFromWKB(t.w, 4326)) AS p
        FROM unnest(CAST(:wkbs AS bytea[])) WITH ORDINALITY AS t(w, ord)
    ) g
    LEFT JOIN LATERAL (
        SELECT code, name FROM grids
        WHERE level = 'grid' AND ST_Intersects(geom, g.p)
        ORDER BY id LIMIT 1
    ) c ON true
    ORDER BY g.ord
    """
)


@dataclass(frozen=True)
class Placement:
    """Where one geometry lies: its point-on-surface, whether allowed, and its grid."""

    index: int
    lon: float
    lat: float
    allowed: bool
    grid_code: str | None
    grid_name: str | None


def placements(
    conn: Connection, allowed_codes: Sequence[str], wkbs: Sequence[bytes]
) -> list[Placement]:
    """For each WGS-84 WKB geometry: inside one of `allowed_codes`' areas, and which grid."""
    if not wkbs:
        return []
    rows = conn.execute(_PLACEMENTS, {"codes": list(allowed_codes), "wkbs": list(wkbs)})
    return [
        Placement(int(r.ord) - 1, float(r.lon), float(r.lat), bool(r.allowed), r.code, r.name)
        for r in rows
    ]
