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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from layers.checks.framework import (
    Level,
    Outcome,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    features,
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

_PAIRS = """
WITH rr AS (
    SELECT venue_type, school_type, max(limit_m) AS limit_m
    FROM unnest(CAST(:vt AS text[]), CAST(:st AS text[]), CAST(:lim AS float8[]))
         AS u(venue_type, school_type, limit_m)
    GROUP BY 1, 2
)
SELECT a.id AS venue_id, a.code AS venue_code, a.name AS venue_name, a.venue_type,
       s.code AS school_code, s.name AS school_name, s.school_type, rr.limit_m,
       ST_Distance(a.geog, s.geog) AS distance_m, a.grid_id
FROM {venues} a
JOIN rr ON rr.venue_type = a.venue_type
JOIN schools s ON s.school_type = rr.school_type AND ST_DWithin(a.geog, s.geog, rr.limit_m)
WHERE {where}
"""

_EVIDENCE = f"""
WITH pairs AS ({_PAIRS})
SELECT ST_AsGeoJSON(ST_Transform(ST_ShortestLine(
           ST_Transform(a.geom, {GK_SRID.format(g="a.geom")}),
           ST_Transform(s.geom, {GK_SRID.format(g="a.geom")})), 4326), 9) AS geometry,
       p.venue_code, p.venue_name, p.venue_type, p.school_code, p.school_name, p.school_type,
       p.limit_m, round(p.distance_m::numeric, 2)::float8 AS distance_m, g.code AS grid_code
FROM pairs p
JOIN {{venues}} a ON a.id = p.venue_id
JOIN schools s ON s.code = p.school_code
LEFT JOIN grids g ON g.id = p.grid_id
ORDER BY p.distance_m, p.venue_code, p.school_code
"""


def boundary_violations(
    conn: Connection, params: ZoneParams, where: str, bind: dict[str, Any], venues: str = "venues"
) -> list[dict[str, Any]]:
    """Venue-school pairs closer than the limit, each a line feature with the distance."""
    found = features(
        conn,
        _EVIDENCE.format(venues=venues, where=where),
        {**bind, **restriction_arrays(params)},
    )
    for f in found:
        p = f["properties"]
        p["method"] = "boundary"
        p["reason"] = (
            f"{p['venue_name']} 距 {p['school_name']} 校界 {p['distance_m']:.2f} 米 "
            f"(限 {p['limit_m']:g} 米) / {p['distance_m']:.2f} m from the campus of "
            f"{p['school_code']}, limit {p['limit_m']:g} m"
        )
    return found


class SchoolZones(Rule):
    """Restricted venues within the profile's distance of schools."""

    id = "school-zones"
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

    def evaluate(self, conn: Connection, scope: Scope, params: ZoneParams) -> Outcome:
        """Violations in scope (by the venue's grid), for the profile's method."""
        where, bind = scope_sql(scope)
        if params.method == "walking":
            from layers.checks.walking import walking_violations

            evidence = walking_violations(conn, params, where, bind)
        else:
            evidence = boundary_violations(conn, params, where, bind)
        venues = {f["properties"]["venue_code"] for f in evidence}
        checked = rows(
            conn,
            f"SELECT count(*) AS n FROM venues a WHERE a.venue_type = ANY(CAST(:vt AS text[])) "
            f"AND {where}",
            {**bind, "vt": restriction_arrays(params)["vt"]},
        )[0]["n"]
        summary = {
            "method": params.method,
            "restricted_venues": checked,
            "violating_venues": len(venues),
            "violations": len(evidence),
        }
        return Outcome(summary, not evidence, evidence)

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
    return boundary_violations(
        conn, params, "TRUE", {"lon": lon, "lat": lat, "venue_type": venue_type}, venue
    )
