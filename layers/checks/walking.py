"""`school-zones`, method `walking` (Guangdong, 粤文旅规〔2023〕1号): the walk between entrances.

The distance is the shortest walk on the road centre lines from any entrance of
the venue (its point when it has none registered) to any entrance of the
school, plus the straight geodesic legs from each end to its nearest road
point; the database function `civic_gis_walking_paths` (migration 0004,
pgRouting) does the routing. A venue at exactly the limit violates it, as in
the boundary method.

A walk is never shorter than the straight line, so `ST_DWithin` on the indexed
geography columns (origin to school entrance) picks the candidate pairs, and
each venue is routed once, on the roads within its largest limit.

A school with no registered entrance is reached at the point of its campus
nearest each venue origin, as if every point of the wall were a gate: the walk
can only come out shorter, so no violation is missed; the evidence says so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from layers.checks.framework import features
from layers.checks.school_zones import ZoneParams, restriction_arrays

# Gauss-Kruger 3-degree zone (EPSG:4534 + n) of a point's longitude: nearest points are
# taken in a conformal plane, where the foot of the perpendicular is right.
_GK = "(4534 + (round(ST_X({g}) / 3)::int * 3 - 75) / 3)"

_NEAREST_CAMPUS_POINT = (
    f"ST_Transform(ST_ClosestPoint(ST_Transform(s.geom, {_GK.format(g='o.geom')}), "
    f"ST_Transform(o.geom, {_GK.format(g='o.geom')})), 4326)"
)

_NO_ENTRANCE = (
    "NOT EXISTS (SELECT 1 FROM entrances x WHERE x.owner_layer = '{layer}' "
    "AND x.owner_code = {code})"
)

_WALKS = f"""
WITH rr AS (
    SELECT venue_type, school_type, max(limit_m) AS limit_m
    FROM unnest(CAST(:vt AS text[]), CAST(:st AS text[]), CAST(:lim AS float8[]))
         AS u(venue_type, school_type, limit_m)
    GROUP BY 1, 2
),
venue_set AS MATERIALIZED (
    SELECT a.id, a.code, a.name, a.venue_type, a.grid_id, a.geom, a.geog
    FROM {{venues}} a
    WHERE a.venue_type IN (SELECT venue_type FROM rr) AND ({{where}})
),
origins AS MATERIALIZED (
    SELECT o.*, row_number() OVER (PARTITION BY o.venue_id ORDER BY o.entrance_code) AS no
    FROM (
        SELECT v.id AS venue_id, v.venue_type, e.code AS entrance_code, e.geom, e.geog
        FROM venue_set v
        JOIN entrances e ON e.owner_layer = 'venues' AND e.owner_code = v.code
        UNION ALL
        SELECT v.id, v.venue_type, NULL, v.geom, v.geog
        FROM venue_set v
        WHERE {_NO_ENTRANCE.format(layer="venues", code="v.code")}
    ) o
),
pairs AS MATERIALIZED (
    SELECT o.venue_id, s.id AS school_id, rr.limit_m
    FROM origins o
    JOIN rr ON rr.venue_type = o.venue_type
    JOIN entrances e ON e.owner_layer = 'schools' AND ST_DWithin(o.geog, e.geog, rr.limit_m)
    JOIN schools s ON s.code = e.owner_code AND s.school_type = rr.school_type
    UNION
    SELECT o.venue_id, s.id, rr.limit_m
    FROM origins o
    JOIN rr ON rr.venue_type = o.venue_type
    JOIN schools s ON s.school_type = rr.school_type AND ST_DWithin(o.geog, s.geog, rr.limit_m)
    WHERE {_NO_ENTRANCE.format(layer="schools", code="s.code")}
),
targets AS MATERIALIZED (
    SELECT t.*, row_number() OVER (
               PARTITION BY t.venue_id ORDER BY t.school_id, t.entrance_code, t.origin_no) AS no
    FROM (
        SELECT p.venue_id, p.school_id, e.code AS entrance_code, NULL::bigint AS origin_no,
               e.geom
        FROM pairs p
        JOIN schools s ON s.id = p.school_id
        JOIN entrances e ON e.owner_layer = 'schools' AND e.owner_code = s.code
        UNION ALL
        SELECT p.venue_id, p.school_id, NULL, o.no, {_NEAREST_CAMPUS_POINT}
        FROM pairs p
        JOIN schools s ON s.id = p.school_id
        JOIN origins o ON o.venue_id = p.venue_id
        WHERE {_NO_ENTRANCE.format(layer="schools", code="s.code")}
    ) t
),
walks AS (
    SELECT v.venue_id, w.*
    FROM (SELECT venue_id, max(limit_m) AS max_m FROM pairs GROUP BY venue_id) v
    CROSS JOIN LATERAL civic_gis_walking_paths(
        ARRAY(SELECT o.geom FROM origins o WHERE o.venue_id = v.venue_id ORDER BY o.no),
        ARRAY(SELECT t.geom FROM targets t WHERE t.venue_id = v.venue_id ORDER BY t.no),
        v.max_m) w
),
best AS (
    SELECT DISTINCT ON (w.venue_id, t.school_id)
           w.venue_id, t.school_id, p.limit_m, o.entrance_code AS venue_entrance,
           t.entrance_code AS school_entrance, w.distance_m, w.origin_leg_m, w.network_m,
           w.target_leg_m, w.path
    FROM walks w
    JOIN origins o ON o.venue_id = w.venue_id AND o.no = w.origin_no
    JOIN targets t ON t.venue_id = w.venue_id AND t.no = w.target_no
    JOIN pairs p ON p.venue_id = w.venue_id AND p.school_id = t.school_id
    WHERE w.distance_m <= p.limit_m
    ORDER BY w.venue_id, t.school_id, w.distance_m, o.no, t.no
)
SELECT ST_AsGeoJSON(b.path, 9) AS geometry,
       v.code AS venue_code, v.name AS venue_name, v.venue_type,
       s.code AS school_code, s.name AS school_name, s.school_type, b.limit_m,
       round(b.distance_m::numeric, 2)::float8 AS distance_m,
       b.venue_entrance, b.school_entrance,
       round(b.origin_leg_m::numeric, 2)::float8 AS venue_leg_m,
       round(b.network_m::numeric, 2)::float8 AS network_m,
       round(b.target_leg_m::numeric, 2)::float8 AS school_leg_m,
       g.code AS grid_code
FROM best b
JOIN venue_set v ON v.id = b.venue_id
JOIN schools s ON s.id = b.school_id
LEFT JOIN grids g ON g.id = v.grid_id
ORDER BY b.distance_m, v.code, s.code
"""


def walking_violations(
    conn: Connection, params: ZoneParams, where: str, bind: dict[str, Any], venues: str = "venues"
) -> list[dict[str, Any]]:
    """Venue-school pairs within the limit on foot, each the walked route with its distance."""
    found = features(
        conn,
        _WALKS.format(venues=venues, where=where),
        {**bind, **restriction_arrays(params)},
    )
    for f in found:
        p = f["properties"]
        p["method"] = "walking"
        p["reason"] = _reason(p)
    return found


def _reason(p: dict[str, Any]) -> str:
    """Bilingual: how far on foot, from which entrance to which."""
    start_zh = f"出入口 {p['venue_entrance']}" if p["venue_entrance"] else "场所位置"
    start_en = f"entrance {p['venue_entrance']}" if p["venue_entrance"] else "the venue point"
    if p["school_entrance"]:
        end_zh, end_en = f"出入口 {p['school_entrance']}", f"entrance {p['school_entrance']}"
    else:
        end_zh = "校界最近点(学校未登记出入口)"
        end_en = "the nearest campus point (no school entrance registered)"
    return (
        f"{p['venue_name']} 自{start_zh}步行至 {p['school_name']} {end_zh} "
        f"{p['distance_m']:.2f} 米 (限 {p['limit_m']:g} 米) / {p['distance_m']:.2f} m on foot "
        f"from {start_en} of {p['venue_code']} to {end_en} of {p['school_code']}, "
        f"limit {p['limit_m']:g} m"
    )


def what_if_walking(
    conn: Connection, params: ZoneParams, lon: float, lat: float, venue_type: str
) -> list[dict[str, Any]]:
    """Schools that would forbid a venue of `venue_type` at (lon, lat), walking method.

    The hypothetical venue has no entrances yet, so the walk starts at the point.
    """
    venue = (
        "(SELECT 0::bigint AS id, 'what-if'::text AS code, '拟设场所'::text AS name, "
        "CAST(:venue_type AS text) AS venue_type, NULL::bigint AS grid_id, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS geog)"
    )
    return walking_violations(
        conn, params, "TRUE", {"lon": lon, "lat": lat, "venue_type": venue_type}, venue
    )
