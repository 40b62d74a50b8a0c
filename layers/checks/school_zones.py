"""`school-zones`: restricted venues near schools, by the profile's restrictions.

Method `boundary` (national rule, 文市函[2003]560号): the geodesic straight-line
distance from the venue to the campus polygon (0 inside it), on the ellipsoid
with PostGIS geography, found with `ST_DWithin(venue.geog, school.geog, d)` on
the indexed geography columns. A venue at exactly the limit violates it
("within 200 m"). The drawn line runs to the nearest boundary point, found in
the local CGCS2000 Gauss-Kruger zone (display only: the verdict is geodesic).
Method `walking` (Guangdong) is in `layers/checks/walking.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from layers.checks.framework import (
    FIRST_PAGE,
    MAX_EVIDENCE_LIMIT,
    PAGE_SQL,
    Level,
    Outcome,
    Page,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    figures_and_evidence,
    grid_units,
    rows,
    scope_sql,
    unit_sql,
)
from layers.profile import RuleProfile


class Restriction(BaseModel):
    """Venue types kept a distance from school types."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    venue_types: list[str]
    school_types: list[str]
    distance_m: float = Field(gt=0)


class ZoneParams(Params):
    """Measuring method and restrictions."""

    method: Literal["boundary", "walking"]
    restrictions: list[Restriction]


def restriction_arrays(params: ZoneParams) -> dict[str, list[Any]]:
    """The restrictions as parallel arrays (venue type, school type, limit) for unnest."""
    vt: list[str] = []
    st: list[str] = []
    limit: list[float] = []
    for r in params.restrictions:
        for v in r.venue_types:
            for s in r.school_types:
                vt.append(v)
                st.append(s)
                limit.append(r.distance_m)
    return {"vt": vt, "st": st, "lim": limit}


# Gauss-Kruger 3-degree zone (EPSG:4534 + n) of a longitude, for drawing nearest points.
GK_SRID = "(4534 + (round(ST_X(ST_PointOnSurface({g})) / 3)::int * 3 - 75) / 3)"

# One index probe per school, as far as its type's farthest restriction reaches (a probe
# per school and venue type was three times the work); then each venue type's own limit.
_PAIRS = """
WITH rr AS (
    SELECT venue_type, school_type, max(limit_m) AS limit_m
    FROM unnest(CAST(:vt AS text[]), CAST(:st AS text[]), CAST(:lim AS float8[]))
         AS u(venue_type, school_type, limit_m)
    GROUP BY 1, 2
),
reach AS (SELECT school_type, max(limit_m) AS reach_m FROM rr GROUP BY 1)
SELECT a.id AS venue_id, a.code AS venue_code, a.name AS venue_name, a.venue_type,
       s.code AS school_code, s.name AS school_name, s.school_type, rr.limit_m,
       ST_Distance(a.geog, s.geog) AS distance_m, a.grid_id
FROM schools s
JOIN reach ON reach.school_type = s.school_type
CROSS JOIN LATERAL (
    SELECT a.* FROM {venues} a
    WHERE ST_DWithin(a.geog, s.geog, reach.reach_m)
      AND a.venue_type = ANY(CAST(:vt AS text[]))
    OFFSET 0) a
JOIN rr ON rr.venue_type = a.venue_type AND rr.school_type = s.school_type
WHERE (rr.limit_m = reach.reach_m OR ST_DWithin(a.geog, s.geog, rr.limit_m)) AND {where}
"""

# The violations counted, and one page of them (nearest first) drawn as lines.
_EVIDENCE = f"""
WITH pairs AS MATERIALIZED ({_PAIRS}),
page AS (SELECT * FROM pairs {PAGE_SQL.format(order="distance_m, venue_code, school_code")})
SELECT (SELECT count(*) FROM pairs) AS violations,
       (SELECT count(DISTINCT venue_id) FROM pairs) AS venues,
       (SELECT json_agg(json_build_object(
            'geometry', ST_AsGeoJSON(ST_Transform(ST_ShortestLine(
                ST_Transform(a.geom, {GK_SRID.format(g="a.geom")}),
                ST_Transform(s.geom, {GK_SRID.format(g="a.geom")})), 4326), 9)::json,
            'venue_code', p.venue_code, 'venue_name', p.venue_name, 'venue_type', p.venue_type,
            'school_code', p.school_code, 'school_name', p.school_name,
            'school_type', p.school_type, 'limit_m', p.limit_m,
            'distance_m', round(p.distance_m::numeric, 2)::float8, 'grid_code', g.code
        ) ORDER BY p.distance_m, p.venue_code, p.school_code)
        FROM page p
        JOIN {{venues}} a ON a.id = p.venue_id
        JOIN schools s ON s.code = p.school_code
        LEFT JOIN grids g ON g.id = p.grid_id) AS evidence
"""


@dataclass(frozen=True)
class Violations:
    """One page of venue-school violations, how many there are, and how many venues."""

    features: list[dict[str, Any]]
    total: int
    venues: int


def boundary_violations(
    conn: Connection,
    params: ZoneParams,
    where: str,
    bind: dict[str, Any],
    venues: str = "venues",
    page: Page = FIRST_PAGE,
) -> Violations:
    """Venue-school pairs closer than the limit, each a line feature with the distance."""
    found, evidence = figures_and_evidence(
        conn,
        _EVIDENCE.format(venues=venues, where=where),
        {**bind, **restriction_arrays(params), **page.bind()},
    )
    for f in evidence:
        p = f["properties"]
        p["method"] = "boundary"
        p["reason"] = (
            f"{p['venue_name']} 距 {p['school_name']} 校界 {p['distance_m']:.2f} 米 "
            f"(限 {p['limit_m']:g} 米) / {p['distance_m']:.2f} m from the campus of "
            f"{p['school_code']}, limit {p['limit_m']:g} m"
        )
    return Violations(evidence, int(found["violations"]), int(found["venues"]))


class SchoolZones(Rule):
    """Restricted venues within the profile's distance of schools."""

    id = "school-zones"
    relative_cost = 0.45
    zh = "学校周边限制"
    en = "School zones"
    description = "学校周边限定距离内的网吧、游戏厅等 / restricted venues near schools"
    params_model = ZoneParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Method and restrictions from the profile."""
        zones = profile.school_zones
        return {
            "method": zones.method,
            "restrictions": [r.model_dump() for r in zones.restrictions],
        }

    def evaluate(
        self, conn: Connection, scope: Scope, params: ZoneParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Violations in scope (by the venue's grid), for the profile's method, nearest first."""
        where, bind = scope_sql(scope)
        if params.method == "walking":
            from layers.checks.walking import walking_violations

            found = walking_violations(conn, params, where, bind)
            venues = {f["properties"]["venue_code"] for f in found}
            v = Violations(page.of(found), len(found), len(venues))
        else:
            v = boundary_violations(conn, params, where, bind, page=page)
        checked = rows(
            conn,
            f"SELECT count(*) AS n FROM venues a WHERE a.venue_type = ANY(CAST(:vt AS text[])) "
            f"AND {where}",
            {**bind, "vt": restriction_arrays(params)["vt"]},
        )[0]["n"]
        summary = {
            "method": params.method,
            "restricted_venues": checked,
            "violating_venues": v.venues,
            "violations": v.total,
        }
        return Outcome(summary, v.total == 0, v.features, v.total)

    def by_unit(self, conn: Connection, level: Level, params: ZoneParams) -> dict[str, UnitVerdict]:
        """Violations per unit (boundary method; walking when the profile says so)."""
        if params.method == "walking":
            from layers.checks.walking import walking_violations

            found = walking_violations(conn, params, "TRUE", {})
            counts: dict[str, int] = {}
            for f in found:
                code = f["properties"].get("grid_code")
                if code:
                    unit = _unit_of(code, level)
                    counts[unit] = counts.get(unit, 0) + 1
        else:
            pairs = rows(
                conn,
                f"WITH p AS ({_PAIRS.format(venues='venues', where='TRUE')}) "
                f"SELECT {unit_sql(level)} AS unit, count(*) AS n FROM p "
                "JOIN grids g ON g.id = p.grid_id GROUP BY 1",
                restriction_arrays(params),
            )
            counts = {r["unit"]: int(r["n"]) for r in pairs}
        units = grid_units(conn, level)
        return {
            unit: UnitVerdict(float(counts.get(unit, 0)), counts.get(unit, 0) == 0)
            for unit in units
        }


def _unit_of(grid_code: str, level: Level) -> str:
    keep = {"grid": 15, "community": 12, "street": 9}[level]
    return grid_code[:keep] + "0" * (15 - keep)


ALL_PAIRS = Page(limit=MAX_EVIDENCE_LIMIT)
"""A what-if point meets a handful of schools: all of them."""


def what_if_boundary(
    conn: Connection, params: ZoneParams, lon: float, lat: float, venue_type: str
) -> list[dict[str, Any]]:
    """Schools that would forbid a venue of `venue_type` at (lon, lat), boundary method."""
    venue = (
        "(SELECT 0::bigint AS id, 'what-if'::text AS code, '拟设场所'::text AS name, "
        "CAST(:venue_type AS text) AS venue_type, NULL::bigint AS grid_id, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS geog)"
    )
    found = boundary_violations(
        conn, params, "TRUE", {"lon": lon, "lat": lat, "venue_type": venue_type}, venue, ALL_PAIRS
    )
    return found.features
