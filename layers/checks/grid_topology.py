"""`grid-topology`: grids tile their jurisdiction (横向到边、纵向到底) and each has its officer.

Problems found, each a feature on the map with a bilingual reason:

- gap: part of the jurisdiction no grid-level cell covers. The jurisdiction is
  the district polygon(s), or the union of the top level loaded when there is
  no district; in a street or community scope, that unit's own polygon, and
  the cells are those whose codes lie under it (so a cell drawn in the wrong
  community leaves a gap there and sticks out of its own parent);
- overlap: the shared area of two grid-level cells;
- no_officer: a grid-level cell without a grid officer (网格员);
- bad_code: a code that contradicts its level or parent (`layers.grid_codes`);
- duplicate_name: two units of one level with the same name under the same
  parent (codes are unique in the table, so a unit entered twice shows as a
  repeated name, and the register 一档一册 would list it twice);
- outside_parent: the part of a unit its parent does not cover.

Areas are geodesic (geography, m²). Gaps, overlaps and overhangs no larger than
`grids.sliver_area_m2` are digitising noise and ignored. Overlay works on the
stored WGS-84 coordinates, so neighbours sharing their vertices leave nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Connection

from layers.catalog import GRIDS
from layers.checks.framework import (
    FIRST_PAGE,
    Level,
    Outcome,
    Page,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    features,
    figures_and_evidence,
    rows,
    unit_sql,
)
from layers.grid_codes import problem_with
from layers.profile import RuleProfile


class TopologyParams(Params):
    """Tolerance for gaps, overlaps and overhangs."""

    sliver_area_m2: float = Field(ge=0, description="ignored at or below this area (m²)")


# Digits of a code that identify a unit of each level (the rest are zeros).
_KEEP = {"district": 6, "street": 9, "community": 12, "grid": 15}

# The parent a row names, or the one its code implies.
_PARENT = (
    "coalesce(c.parent_code, CASE c.level WHEN 'street' THEN left(c.code, 6) || '000000000' "
    "WHEN 'community' THEN left(c.code, 9) || '000000' "
    "WHEN 'grid' THEN left(c.code, 12) || '000' END)"
)

# The jurisdiction of the whole city: the districts, or the top level loaded.
_CITY = """
SELECT 'all'::text AS unit, ''::text AS prefix, ST_Union(geom) AS geom
FROM grids
WHERE level = (SELECT level FROM grids
               ORDER BY array_position(ARRAY['district', 'street', 'community', 'grid'], level)
               LIMIT 1)
"""

_UNITS_OF_LEVEL = """
SELECT code AS unit, left(code, :keep) AS prefix, geom FROM grids WHERE level = :unit_level
"""

_UNIT = """
SELECT code AS unit, left(code, :keep) AS prefix, geom FROM grids WHERE code = :unit_code
"""

_GAPS = """
WITH units AS ({units}),
cover AS (
    SELECT u.unit, ST_Union(c.geom) AS geom
    FROM units u JOIN grids c ON c.level = 'grid' AND c.code LIKE u.prefix || '%'
    GROUP BY u.unit
),
gaps AS (
    SELECT u.unit, d.geom, ST_Area(d.geom::geography) AS area_m2
    FROM units u
    LEFT JOIN cover v ON v.unit = u.unit
    CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(
        CASE WHEN v.geom IS NULL THEN u.geom ELSE ST_Difference(u.geom, v.geom) END, 3)) d
)
SELECT ST_AsGeoJSON(geom, 9) AS geometry, unit, area_m2 FROM gaps
WHERE area_m2 > :sliver
ORDER BY unit, area_m2 DESC
"""

# Square metres per square degree, at most, at any latitude: (pi/180)^2 x M x N cos(phi) is
# below (pi/180)^2 x 6,399,594^2 (both radii of curvature peak at the poles) = 1.2475e10.
M2_PER_DEG2 = 1.25e10

# The whole city: gaps (the jurisdiction less the union of the grid cells) and how much
# the cells' areas exceed their union's (square degrees; `_EXCESS` alone when no gaps are
# looked for). Every point of an overlap lies in two cells or more, so no two cells
# overlap by more than that excess: when it is within the sliver tolerance the pairwise
# overlap search (a DE-9IM relate per pair of neighbours, most of this rule's time) has
# nothing to find and is skipped.
_CITY_GAPS = f"""
WITH cover AS MATERIALIZED (
    SELECT ST_Union(geom) AS geom, sum(ST_Area(geom)) AS cells_deg2
    FROM grids WHERE level = 'grid'
),
city AS ({_CITY}),
gaps AS (
    SELECT d.geom, ST_Area(d.geom::geography) AS area_m2
    FROM city
    CROSS JOIN cover v
    CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(
        CASE WHEN v.geom IS NULL THEN city.geom ELSE ST_Difference(city.geom, v.geom) END, 3)) d
)
SELECT (SELECT coalesce(cells_deg2 - ST_Area(geom), 0) FROM cover) AS excess_deg2,
       (SELECT json_agg(json_build_object(
            'geometry', ST_AsGeoJSON(geom, 9)::json, 'unit', 'all', 'area_m2', area_m2)
            ORDER BY area_m2 DESC)
        FROM gaps WHERE area_m2 > :sliver) AS evidence
"""

_EXCESS = """
SELECT coalesce(sum(ST_Area(geom)) - ST_Area(ST_Union(geom)), 0) AS excess_deg2
FROM grids WHERE level = 'grid'
"""

_OVERLAPS = """
SELECT ST_AsGeoJSON(o.geom, 9) AS geometry, o.code_a, o.code_b, o.area_m2
FROM (
    SELECT a.code AS code_a, b.code AS code_b, x.geom, ST_Area(x.geom::geography) AS area_m2
    FROM grids a
    JOIN grids b ON b.level = 'grid' AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
    CROSS JOIN LATERAL (
        SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom) x
    WHERE a.level = 'grid' AND (a.code LIKE :within OR b.code LIKE :within)
      AND ST_Relate(a.geom, b.geom, '2********')
) o
WHERE o.area_m2 > :sliver
ORDER BY o.code_a, o.code_b
"""

_NO_OFFICER = """
SELECT ST_AsGeoJSON(c.geom, 9) AS geometry, c.code, c.name
FROM grids c
WHERE c.level = 'grid' AND coalesce(btrim(c.officer), '') = '' AND c.code LIKE :within
ORDER BY c.code
"""

# Codes are checked in Python (`layers.grid_codes`); only the bad ones are drawn.
_ROWS = """
SELECT c.code, c.level, c.parent_code, c.name
FROM grids c WHERE c.code LIKE :within ORDER BY c.code
"""

_SHAPES = """
SELECT c.code, ST_AsGeoJSON(c.geom, 9)::json AS geometry
FROM grids c WHERE c.code = ANY(CAST(:codes AS text[]))
"""

_DUPLICATE_NAMES = f"""
WITH named AS (
    SELECT c.code, c.level, c.name, c.geom, {_PARENT} AS parent FROM grids c
),
repeated AS (
    SELECT level, parent, name, array_agg(code ORDER BY code) AS codes
    FROM named GROUP BY level, parent, name HAVING count(*) > 1
)
SELECT ST_AsGeoJSON(n.geom, 9) AS geometry, n.code, n.level, n.name, r.codes
FROM named n
JOIN repeated r ON r.level = n.level AND r.parent IS NOT DISTINCT FROM n.parent
                AND r.name = n.name
WHERE n.code LIKE :within
ORDER BY n.code
"""

_OUTSIDE_PARENT = f"""
SELECT ST_AsGeoJSON(x.geom, 9) AS geometry, x.code, x.parent, x.area_m2
FROM (
    SELECT c.code, p.code AS parent, d.geom, ST_Area(d.geom::geography) AS area_m2
    FROM grids c
    JOIN grids p ON p.code = {_PARENT} AND p.id <> c.id
    CROSS JOIN LATERAL (
        SELECT ST_CollectionExtract(ST_Difference(c.geom, p.geom), 3) AS geom) d
    WHERE c.code LIKE :within AND NOT ST_CoveredBy(c.geom, p.geom)
) x
WHERE x.area_m2 > :sliver
ORDER BY x.code
"""


def _level_zh(level: str) -> str:
    try:
        return GRIDS.field("level").choice(level).zh
    except KeyError:
        return level


def _feature(
    geometry: Any, problem: str, codes: list[str], reason: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"problem": problem, "codes": codes, **extra, "reason": reason},
    }


def _problems(
    conn: Connection, within: str, units: str | None, bind: dict[str, Any], sliver: float
) -> list[dict[str, Any]]:
    """Every problem among the grids whose codes match `within` (a LIKE pattern).

    `units` selects (unit, prefix, geom) rows whose gaps to look for (None: no gaps).
    """
    params = {**bind, "within": within, "sliver": sliver}
    found: list[dict[str, Any]] = []
    overlaps = True
    gaps: list[dict[str, Any]] = []
    if units == _CITY:
        figures, gaps = figures_and_evidence(conn, _CITY_GAPS, params)
        overlaps = float(figures["excess_deg2"]) * M2_PER_DEG2 > sliver
    else:
        if units is not None:
            gaps = features(conn, _GAPS.format(units=units), params)
        if within == "%":
            excess = rows(conn, _EXCESS, {})[0]["excess_deg2"]
            overlaps = float(excess) * M2_PER_DEG2 > sliver
    for f in gaps:
        p = f["properties"]
        area = round(p["area_m2"], 2)
        where_zh = "全域" if p["unit"] == "all" else p["unit"]
        where_en = "the jurisdiction" if p["unit"] == "all" else p["unit"]
        found.append(
            _feature(
                f["geometry"],
                "gap",
                [],
                f"网格未覆盖区域 {area:.2f} 平方米 ({where_zh}) / "
                f"gap of {area:.2f} m² in {where_en} covered by no grid",
                unit=p["unit"],
                area_m2=area,
            )
        )
    for f in features(conn, _OVERLAPS, params) if overlaps else []:
        p = f["properties"]
        area = round(p["area_m2"], 2)
        found.append(
            _feature(
                f["geometry"],
                "overlap",
                [p["code_a"], p["code_b"]],
                f"网格 {p['code_a']} 与 {p['code_b']} 重叠 {area:.2f} 平方米 / "
                f"grids {p['code_a']} and {p['code_b']} overlap by {area:.2f} m²",
                area_m2=area,
            )
        )
    for f in features(conn, _NO_OFFICER, params):
        p = f["properties"]
        found.append(
            _feature(
                f["geometry"],
                "no_officer",
                [p["code"]],
                f"网格 {p['code']} ({p['name']}) 未配备网格员 / grid {p['code']} has no officer",
                name=p["name"],
            )
        )
    bad = [
        (p, problem)
        for p in rows(conn, _ROWS, params)
        if (problem := problem_with(p["code"], p["level"], p["parent_code"])) is not None
    ]
    shapes = {
        r["code"]: r["geometry"]
        for r in rows(conn, _SHAPES, {"codes": [p["code"] for p, _ in bad]})
    }
    for p, problem in bad:
        found.append(
            _feature(
                shapes[p["code"]],
                "bad_code",
                [p["code"]],
                f"{_level_zh(p['level'])}编码不规范 ({p['code']}) / "
                f"bad {p['level']} code {p['code']}: {problem}",
                level=p["level"],
                name=p["name"],
            )
        )
    for f in features(conn, _DUPLICATE_NAMES, params):
        p = f["properties"]
        others = ", ".join(c for c in p["codes"] if c != p["code"])
        found.append(
            _feature(
                f["geometry"],
                "duplicate_name",
                [p["code"]],
                f"同一上级下{_level_zh(p['level'])}重名: {p['name']} (另见 {others}) / "
                f"{p['level']} name {p['name']!r} repeated under one parent (also {others})",
                level=p["level"],
                name=p["name"],
                same_name=p["codes"],
            )
        )
    for f in features(conn, _OUTSIDE_PARENT, params):
        p = f["properties"]
        area = round(p["area_m2"], 2)
        found.append(
            _feature(
                f["geometry"],
                "outside_parent",
                [p["code"]],
                f"{p['code']} 超出上级 {p['parent']} 范围 {area:.2f} 平方米 / "
                f"{p['code']} extends {area:.2f} m² beyond its parent {p['parent']}",
                parent=p["parent"],
                area_m2=area,
            )
        )
    return found


def _unit_of(code: str, level: Level) -> str:
    keep = _KEEP[level]
    return code[:keep] + "0" * (15 - keep)


class GridTopology(Rule):
    """Gaps, overlaps, officers and codes of the grid hierarchy."""

    id = "grid-topology"
    relative_cost = 1.0
    zh = "网格拓扑"
    en = "Grid topology"
    description = (
        "网格全覆盖无缝隙、无重叠, 每格有网格员, 编码规范 / "
        "grids tile without gaps or overlaps, each has an officer and a valid code"
    )
    params_model = TopologyParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """The sliver tolerance from the profile."""
        return {"sliver_area_m2": profile.grids.sliver_area_m2}

    def evaluate(
        self, conn: Connection, scope: Scope, params: TopologyParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Problems in scope: a street or community is checked against its own polygon."""
        within = "%" if scope.prefix is None else scope.prefix + "%"
        bind: dict[str, Any] = {}
        units: str | None
        if scope.code is None:
            units = _CITY
        elif scope.level == "grid":
            units = None  # a cell is its own jurisdiction: nothing to leave uncovered
        else:
            units = _UNIT
            bind = {"unit_code": scope.code, "keep": _KEEP[scope.level]}
        evidence = _problems(conn, within, units, bind, params.sliver_area_m2)
        cells = rows(
            conn,
            "SELECT count(*) AS n FROM grids WHERE level = 'grid' AND code LIKE :within",
            {"within": within},
        )[0]["n"]
        counts = {
            kind: sum(1 for f in evidence if f["properties"]["problem"] == kind)
            for kind in (
                "gap",
                "overlap",
                "no_officer",
                "bad_code",
                "duplicate_name",
                "outside_parent",
            )
        }
        summary = {
            "cells": cells,
            **counts,
            "gap_area_m2": _area(evidence, "gap"),
            "overlap_area_m2": _area(evidence, "overlap"),
            "sliver_area_m2": params.sliver_area_m2,
        }
        passed = None if cells == 0 and not evidence else not evidence
        return Outcome(summary, passed, page.of(evidence), len(evidence))

    def by_unit(
        self, conn: Connection, level: Level, params: TopologyParams
    ) -> dict[str, UnitVerdict]:
        """Number of problems per unit; a unit passes with none."""
        units = None if level == "grid" else _UNITS_OF_LEVEL
        bind = {"unit_level": level, "keep": _KEEP[level]}
        evidence = _problems(conn, "%", units, bind, params.sliver_area_m2)
        known = {
            r["unit"]
            for r in rows(
                conn,
                f"SELECT DISTINCT {unit_sql(level)} AS unit FROM grids g WHERE g.level = 'grid' "
                "UNION SELECT code FROM grids WHERE level = :level",
                {"level": level},
            )
        }
        counts = dict.fromkeys(known, 0)
        for f in evidence:
            p = f["properties"]
            hit = {_unit_of(code, level) for code in p["codes"]}
            if p["problem"] == "gap":
                hit.add(p["unit"])
            for unit in hit & known:
                counts[unit] += 1
        return {unit: UnitVerdict(float(n), n == 0) for unit, n in counts.items()}


def _area(evidence: list[dict[str, Any]], problem: str) -> float:
    total = sum(
        float(f["properties"]["area_m2"]) for f in evidence if f["properties"]["problem"] == problem
    )
    return round(total, 2)
