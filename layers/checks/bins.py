"""Bin rules: `bin-condition` (完好率) and `bin-coverage` (collection-point service radius).

`bin-condition`: 完好率 = intact bins / all bins of every kind in scope (a
`missing` bin is still a bin the city owes, so it stays in the denominator).
`overflowing` (满溢) is a cleaning failure, not a broken facility: by default
it counts as intact and is reported apart; the parameter
`overflowing_is_damaged=true` makes it count against the rate (and shows it as
evidence) for cities that score it that way.

`bin-coverage`: a residential building (buildings.residential; compounds are
not counted, their buildings are) is covered when a serving point lies within
the service radius of its footprint: the geodesic distance from the point to
the nearest point of the polygon (0 inside), `ST_DWithin` on the indexed
geography columns. Serving points are bins of `point_kinds` (collection and
sorting points by default: the places residents carry household waste to;
litter bins along roads serve passers-by) whose condition is not `missing`
(a damaged point still receives waste). Points outside the scope serve
buildings inside it. The profile has no coverage-share threshold, so the rule
asks for 全覆盖: it passes only when every residential building is covered.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Connection

from layers.catalog import BINS
from layers.checks.framework import (
    FIRST_PAGE,
    PAGE_SQL,
    Level,
    Outcome,
    Page,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    comma_list,
    features,
    figures_and_evidence,
    rated_units,
    rows,
    scope_sql,
    unit_sql,
)
from layers.checks.near import (
    BINS_BUILDINGS,
    box,
    kept,
    kept_pairs,
    kept_within,
    shape_within,
)
from layers.profile import RuleProfile

CONDITION_ZH = {c.key: c.zh for c in BINS.field("condition").choices}
KIND_ZH = {c.key: c.zh for c in BINS.field("kind").choices}


class ConditionParams(Params):
    """The 完好率 threshold and whether an overflowing bin counts as not intact."""

    condition_rate: float = Field(ge=0, le=1)
    overflowing_is_damaged: bool = False


_COUNTS = """
SELECT {unit} AS unit, a.kind,
       count(*) AS bins,
       count(*) FILTER (WHERE a.condition = 'good') AS good,
       count(*) FILTER (WHERE a.condition = 'damaged') AS damaged,
       count(*) FILTER (WHERE a.condition = 'missing') AS missing,
       count(*) FILTER (WHERE a.condition = 'overflowing') AS overflowing
FROM bins a
{join}
WHERE {where}
GROUP BY 1, 2
"""

_BAD_BINS = f"""
SELECT ST_AsGeoJSON(a.geom, 9) AS geometry, a.code, a.kind, a.condition, a.road_code,
       g.code AS grid_code
FROM bins a
LEFT JOIN grids g ON g.id = a.grid_id
WHERE a.condition = ANY(CAST(:bad AS text[])) AND {{where}}
{PAGE_SQL.format(order="a.code")}
"""


def _bad_conditions(params: ConditionParams) -> list[str]:
    return ["damaged", "missing"] + (["overflowing"] if params.overflowing_is_damaged else [])


class BinCondition(Rule):
    """完好率 of all bins against the profile."""

    id = "bin-condition"
    relative_cost = 0.3
    zh = "垃圾箱完好率"
    en = "Bin condition rate"
    description = "完好率 = 完好数 / 总数 (破损、缺失为不完好) / intact ÷ all bins"
    params_model = ConditionParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Threshold from the profile; overflowing counts as intact unless overridden."""
        return {"condition_rate": profile.bins.condition_rate, "overflowing_is_damaged": False}

    def _judge(
        self, params: ConditionParams, groups: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], bool | None]:
        totals = {k: sum(int(g[k]) for g in groups) for k in CONDITION_ZH}
        bins = sum(int(g["bins"]) for g in groups)
        intact = totals["good"] + (0 if params.overflowing_is_damaged else totals["overflowing"])
        rate = intact / bins if bins else None
        passed = None if rate is None else rate >= params.condition_rate - 1e-12
        by_kind: dict[str, dict[str, int]] = {}
        for g in groups:
            kind = by_kind.setdefault(g["kind"], dict.fromkeys(("bins", *CONDITION_ZH), 0))
            for k in kind:
                kind[k] += int(g[k])
        summary = {
            "bins": bins,
            "intact": intact,
            **totals,
            "rate": None if rate is None else round(rate, 6),
            "threshold": params.condition_rate,
            "overflowing_counts_as": "damaged" if params.overflowing_is_damaged else "intact",
            "by_kind": dict(sorted(by_kind.items())),
        }
        return summary, passed

    def evaluate(
        self, conn: Connection, scope: Scope, params: ConditionParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """The rate in scope; damaged and missing (and, if so set, overflowing) bins as evidence."""
        where, bind = scope_sql(scope)
        groups = rows(conn, _COUNTS.format(unit="'scope'", join="", where=where), bind)
        summary, passed = self._judge(params, groups)
        bad = _bad_conditions(params)
        total = sum(int(summary[c]) for c in bad)
        evidence = []
        if page.limit and total > page.offset:
            evidence = features(
                conn, _BAD_BINS.format(where=where), {**bind, **page.bind(), "bad": bad}
            )
        for f in evidence:
            p = f["properties"]
            p["reason"] = (
                f"{KIND_ZH[p['kind']]}{CONDITION_ZH[p['condition']]} / {p['kind']} {p['condition']}"
            )
        return Outcome(summary, passed, evidence, total)

    def by_unit(
        self, conn: Connection, level: Level, params: ConditionParams
    ) -> dict[str, UnitVerdict]:
        """Rate and verdict of every unit that has bins."""
        groups = rows(
            conn,
            _COUNTS.format(
                unit=unit_sql(level), join="JOIN grids g ON g.id = a.grid_id", where="TRUE"
            ),
            {},
        )
        return rated_units(groups, lambda unit_groups: self._judge(params, unit_groups))


class CoverageParams(Params):
    """Service radius and the bin kinds that serve households."""

    service_radius_m: float = Field(gt=0)
    point_kinds: list[str] = Field(default_factory=lambda: ["collection_point", "sorting_point"])

    _split = field_validator("point_kinds", mode="before")(comma_list)

    @field_validator("point_kinds")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in KIND_ZH]
        if unknown or not value:
            raise ValueError(f"bin kinds must be among {', '.join(KIND_ZH)}")
        return value


# Serving points, anywhere in the city (a point across a grid line still serves).
_SERVING = "p.kind = ANY(CAST(:kinds AS text[])) AND p.condition <> 'missing'"

# Residential buildings in scope with a serving point within the radius, geodesic.
# Within the reach of the pairs the database keeps (`layers.checks.near`), from those;
# else measured: city-wide driven from the serving points, the smaller side, each probing
# the buildings' index; for a scope, from its few buildings probing the points' index.
_COVERED_KEPT_ALL = f"""
SELECT DISTINCT n.b_id AS id
FROM near_pairs n
JOIN bins p ON p.id = n.a_id
WHERE {kept_pairs("n", BINS_BUILDINGS)} AND n.distance_m <= :radius + 0.001 AND {_SERVING}
  AND {kept_within("n", ":radius", "bins", "buildings")}
"""

_COVERED_KEPT_SCOPE = f"""
SELECT DISTINCT a.id
FROM buildings a
JOIN near_pairs n ON {kept_pairs("n", BINS_BUILDINGS)} AND n.b_id = a.id
JOIN bins p ON p.id = n.a_id
WHERE a.residential AND {{where}} AND {_SERVING}
  AND {kept_within("n", ":radius", "bins", "buildings")}
"""

_COVERED_ALL = f"""
SELECT DISTINCT a.id
FROM bins p
JOIN buildings a ON a.geom && {box("p.geom", ":radius")}
WHERE {_SERVING} AND a.residential AND {shape_within("a", "p", ":radius")}
"""

_COVERED_SCOPE = f"""
SELECT a.id
FROM buildings a
WHERE a.residential AND {{where}} AND EXISTS (
    SELECT FROM bins p
    WHERE p.geom && {box("a.geom", ":radius")} AND {_SERVING}
      AND {shape_within("a", "p", ":radius")})
"""


def _covered(conn: Connection, where: str, radius: float) -> str:
    """Ids of the covered residential buildings among those `where` keeps."""
    if kept(conn, BINS_BUILDINGS, radius):
        return _COVERED_KEPT_ALL if where == "TRUE" else _COVERED_KEPT_SCOPE.format(where=where)
    return _COVERED_ALL if where == "TRUE" else _COVERED_SCOPE.format(where=where)


_COVERAGE = """
SELECT {unit} AS unit, count(*) AS buildings, count(h.id) AS covered
FROM buildings a
LEFT JOIN ({covered}) h ON h.id = a.id
{join}
WHERE a.residential AND {where}
GROUP BY 1
"""

# One pass decides each building's coverage (the costly part) and counts; one page of
# the uncovered, by code, is drawn with its nearest serving point, exactly: the nearest
# of its kept pairs (`q`) when there is one; else the planar KNN (`<->` on the 2D index,
# cheap) finds a point whose geodesic distance bounds the minimum, and an indexed
# ST_DWithin within that bound (+1 cm, as DWithin may drop a point at exactly the bound)
# finds the geodesic nearest.
_COVERAGE_WITH_EVIDENCE = f"""
WITH h AS MATERIALIZED ({{covered}}),
b AS MATERIALIZED (
    SELECT a.id, a.code, h.id IS NOT NULL AS covered
    FROM buildings a
    LEFT JOIN h ON h.id = a.id
    WHERE a.residential AND {{where}}
),
page AS (
    SELECT b.id FROM b WHERE NOT b.covered
    {PAGE_SQL.format(order="b.code")}
)
SELECT (SELECT count(*) FROM b) AS buildings,
       (SELECT count(*) FROM b WHERE b.covered) AS covered,
       (SELECT json_agg(u ORDER BY u.code) FROM (
            SELECT ST_AsGeoJSON(a.geom, 9)::json AS geometry, a.code, a.name, a.compound_code,
                   a.households, g.code AS grid_code, n.code AS nearest_point,
                   round(n.distance_m::numeric, 2)::float8 AS distance_m
            FROM page
            JOIN buildings a ON a.id = page.id
            LEFT JOIN grids g ON g.id = a.grid_id
            LEFT JOIN LATERAL (
                SELECT p.code, n.distance_m
                FROM near_pairs n JOIN bins p ON p.id = n.a_id
                WHERE {kept_pairs("n", BINS_BUILDINGS)} AND n.b_id = a.id AND {_SERVING}
                ORDER BY 2, 1
                LIMIT 1
            ) q ON TRUE
            LEFT JOIN LATERAL (
                SELECT ST_Distance(p.geog, a.geog) AS bound
                FROM bins p WHERE q.code IS NULL AND {_SERVING}
                ORDER BY p.geom <-> a.geom
                LIMIT 1
            ) k ON TRUE
            LEFT JOIN LATERAL (
                SELECT p.code, ST_Distance(p.geog, a.geog) AS distance_m
                FROM bins p
                WHERE q.code IS NULL AND {_SERVING}
                  AND ST_DWithin(p.geog, a.geog, k.bound + 0.01)
                ORDER BY 2, 1
                LIMIT 1
            ) m ON TRUE
            CROSS JOIN LATERAL (
                SELECT coalesce(q.code, m.code) AS code,
                       coalesce(q.distance_m, m.distance_m) AS distance_m
            ) n
       ) u) AS evidence
"""


class BinCoverage(Rule):
    """Residential buildings within the service radius of a collection point."""

    id = "bin-coverage"
    relative_cost = 1.2
    zh = "垃圾收集点服务半径覆盖率"
    en = "Collection point coverage"
    description = (
        "服务半径内有垃圾收集点的住宅楼栋占比 / share of residential buildings "
        "within the service radius of a collection point"
    )
    params_model = CoverageParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Radius from the profile; collection and sorting points serve households."""
        return {
            "service_radius_m": profile.bins.service_radius_m,
            "point_kinds": ["collection_point", "sorting_point"],
        }

    def _bind(self, params: CoverageParams) -> dict[str, Any]:
        return {"kinds": params.point_kinds, "radius": params.service_radius_m}

    @staticmethod
    def _judge(buildings: int, covered: int) -> tuple[float | None, bool | None]:
        if not buildings:
            return None, None
        return round(covered / buildings, 6), covered == buildings

    def evaluate(
        self, conn: Connection, scope: Scope, params: CoverageParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """The covered share in scope; uncovered buildings (by code) with their nearest point."""
        where, bind = scope_sql(scope)
        bind = {**bind, **self._bind(params), **page.bind()}
        found, evidence = figures_and_evidence(
            conn,
            _COVERAGE_WITH_EVIDENCE.format(
                covered=_covered(conn, where, params.service_radius_m), where=where
            ),
            bind,
        )
        buildings, covered = int(found["buildings"]), int(found["covered"])
        share, passed = self._judge(buildings, covered)
        radius = params.service_radius_m
        for f in evidence:
            p = f["properties"]
            if p["distance_m"] is None:
                p["reason"] = "无垃圾收集点 / no collection point at all"
            else:
                p["reason"] = (
                    f"距最近收集点 {p['distance_m']:.2f} 米 (服务半径 {radius:g} 米) / "
                    f"{p['distance_m']:.2f} m from the nearest collection point "
                    f"{p['nearest_point']}, radius {radius:g} m"
                )
        summary = {
            "residential_buildings": buildings,
            "covered": covered,
            "uncovered": buildings - covered,
            "share": share,
            "service_radius_m": radius,
            "point_kinds": params.point_kinds,
            "threshold": 1.0,
        }
        return Outcome(summary, passed, evidence, buildings - covered)

    def by_unit(
        self, conn: Connection, level: Level, params: CoverageParams
    ) -> dict[str, UnitVerdict]:
        """Covered share and verdict of every unit with residential buildings."""
        found = rows(
            conn,
            _COVERAGE.format(
                covered=_covered(conn, "TRUE", params.service_radius_m),
                unit=unit_sql(level),
                join="JOIN grids g ON g.id = a.grid_id",
                where="TRUE",
            ),
            self._bind(params),
        )
        verdicts = {}
        for r in found:
            share, passed = self._judge(int(r["buildings"]), int(r["covered"]))
            verdicts[r["unit"]] = UnitVerdict(share, passed)
        return verdicts
