"""巡查到位: the share of a grid's road length within the profile's distance of patrol tracks.

Only walked lines count: GPX routes are plans, not patrols. A track counts for a period
when its time span overlaps it (tracks without times count only when no period is asked).
The nearness test is geodesic and uses the GiST index of `field_tracks.geog`; the covered
part of each road is the road clipped to the grid minus the geodesic buffers of the
tracks near it, measured on the spheroid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

_SQL = text(
    """
    WITH g AS (SELECT geom FROM grids WHERE code = :grid),
    t AS (
        SELECT ft.geog FROM field_tracks ft
        WHERE ft.kind <> 'route'
          AND (CAST(:from_ AS timestamptz) IS NULL
               OR COALESCE(ft.ended_at, ft.started_at) >= CAST(:from_ AS timestamptz))
          AND (CAST(:to_ AS timestamptz) IS NULL OR ft.started_at < CAST(:to_ AS timestamptz))
    ),
    r AS (
        SELECT rd.id, rd.code, rd.name, rd.road_class,
               ST_CollectionExtract(ST_Intersection(rd.geom, g.geom), 2) AS geom
        FROM roads rd, g WHERE ST_Intersects(rd.geom, g.geom)
    ),
    cov AS (
        SELECT r.id, ST_Union(ST_Buffer(t.geog, :d)::geometry) AS area
        FROM r JOIN t ON ST_DWithin(t.geog, r.geom::geography, :d)
        GROUP BY r.id
    )
    SELECT r.code, r.name, r.road_class,
           ST_Length(r.geom::geography) AS length_m,
           COALESCE(ST_Length(ST_Intersection(r.geom, cov.area)::geography), 0) AS covered_m,
           ST_AsGeoJSON(CASE WHEN cov.area IS NULL THEN r.geom
                             ELSE ST_Difference(r.geom, cov.area) END, 9) AS gap
    FROM r LEFT JOIN cov USING (id)
    WHERE NOT ST_IsEmpty(r.geom)
    ORDER BY r.code
    """
)


def grid_exists(conn: Connection, code: str) -> bool:
    """Whether a grid (of any level) has this code."""
    return (
        conn.execute(text("SELECT 1 FROM grids WHERE code = :c"), {"c": code}).first() is not None
    )


def patrol_coverage(
    conn: Connection,
    grid: str,
    start: datetime | None,
    end: datetime | None,
    distance_m: float,
) -> dict[str, Any]:
    """Road length, patrolled length and share, and the unpatrolled stretches as GeoJSON."""
    rows = conn.execute(_SQL, {"grid": grid, "from_": start, "to_": end, "d": distance_m}).all()
    total = sum(float(r.length_m) for r in rows)
    covered = sum(min(float(r.covered_m), float(r.length_m)) for r in rows)
    features = []
    for r in rows:
        gap = orjson.loads(r.gap)
        gap_m = max(float(r.length_m) - float(r.covered_m), 0.0)
        if gap_m < 0.01:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": gap,
                "properties": {
                    "code": r.code,
                    "name": r.name,
                    "road_class": r.road_class,
                    "road_length_m": round(float(r.length_m), 2),
                    "unpatrolled_m": round(gap_m, 2),
                },
            }
        )
    return {
        "grid": grid,
        "from": start.isoformat() if start else None,
        "to": end.isoformat() if end else None,
        "distance_m": distance_m,
        "road_length_m": round(total, 2),
        "patrolled_m": round(covered, 2),
        "share": round(covered / total, 4) if total else None,
        "unpatrolled": {"type": "FeatureCollection", "features": features},
    }
