"""`lamp-lighting-rate` (亮灯率): lit lamps over installed lamps, per road class and placement.

Installed = every lamp whose pole is there (status lit, unlit or damaged); a
`missing` lamp is not installed and counts against 装灯率 (lamp-spacing), not
here. Road lamps take the threshold of their road's class; stairwell and
corridor lamps take the placement thresholds (100 % by default); road lamps
with no road take the strictest road threshold.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Connection

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
    features,
    rated_units,
    rows,
    scope_sql,
    unit_sql,
)
from layers.profile import RuleProfile

Rate = float


class LightingParams(Params):
    """Thresholds per road class and per placement (0..1)."""

    lighting_rate: dict[str, Rate] = Field(description="per road class")
    lighting_rate_by_placement: dict[str, Rate] = Field(description="stairwell, corridor, …")


STATUS_ZH = {"unlit": "不亮", "damaged": "损坏"}
"""The statuses shown as evidence: installed lamps that are not lit."""

_FAILING = f"a.status IN ({', '.join(repr(s) for s in STATUS_ZH)})"

_GROUPS = f"""
SELECT {{unit}} AS unit,
       CASE WHEN a.placement = 'road' THEN coalesce(r.road_class, 'unknown')
            ELSE a.placement END AS grp,
       count(*) FILTER (WHERE a.status <> 'missing') AS installed,
       count(*) FILTER (WHERE a.status = 'lit') AS lit,
       count(*) FILTER (WHERE {_FAILING}) AS failing
FROM street_lamps a
LEFT JOIN roads r ON r.code = a.road_code
{{join}}
WHERE {{where}}
GROUP BY 1, 2
"""

_EVIDENCE = f"""
SELECT ST_AsGeoJSON(a.geom, 9) AS geometry, a.code, a.status, a.placement,
       coalesce(r.road_class, 'unknown') AS road_class, a.road_code, g.code AS grid_code
FROM street_lamps a
LEFT JOIN roads r ON r.code = a.road_code
LEFT JOIN grids g ON g.id = a.grid_id
WHERE {_FAILING} AND {{where}}
{PAGE_SQL.format(order="a.code")}
"""


class LampLightingRate(Rule):
    """亮灯率 against the profile."""

    id = "lamp-lighting-rate"
    relative_cost = 0.8
    zh = "亮灯率"
    en = "Lamp lighting rate"
    description = "亮灯率 = 亮灯数 / 装灯数, 按道路等级与安装位置 / lit ÷ installed per class"
    params_model = LightingParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Thresholds from the profile."""
        return {
            "lighting_rate": dict(profile.lamps.lighting_rate),
            "lighting_rate_by_placement": dict(profile.lamps.lighting_rate_by_placement),
        }

    def _threshold(self, params: LightingParams, group: str) -> float:
        if group in params.lighting_rate_by_placement:
            return params.lighting_rate_by_placement[group]
        if group in params.lighting_rate:
            return params.lighting_rate[group]
        return max(params.lighting_rate.values(), default=1.0)

    def _judge(
        self, params: LightingParams, groups: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], bool | None]:
        per_group = {}
        passed: bool | None = None
        for g in sorted(groups, key=lambda r: str(r["grp"])):
            if g["installed"] == 0:
                continue
            rate = g["lit"] / g["installed"]
            threshold = self._threshold(params, g["grp"])
            ok = rate >= threshold - 1e-12
            per_group[g["grp"]] = {
                "installed": g["installed"],
                "lit": g["lit"],
                "rate": round(rate, 6),
                "threshold": threshold,
                "passed": ok,
            }
            passed = ok if passed is None else passed and ok
        installed = sum(g["installed"] for g in groups)
        lit = sum(g["lit"] for g in groups)
        summary = {
            "installed": installed,
            "lit": lit,
            "rate": round(lit / installed, 6) if installed else None,
            "groups": per_group,
        }
        return summary, passed

    def evaluate(
        self, conn: Connection, scope: Scope, params: LightingParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Rates per class in scope; the unlit and damaged lamps as evidence, by code."""
        where, bind = scope_sql(scope)
        groups = rows(conn, _GROUPS.format(unit="'scope'", join="", where=where), bind)
        summary, passed = self._judge(params, groups)
        total = sum(int(g["failing"]) for g in groups)
        evidence = []
        if page.limit and total > page.offset:
            evidence = features(conn, _EVIDENCE.format(where=where), {**bind, **page.bind()})
        for f in evidence:
            p = f["properties"]
            p["reason"] = f"路灯{STATUS_ZH.get(p['status'], p['status'])} / lamp {p['status']}"
        return Outcome(summary, passed, evidence, total)

    def by_unit(
        self, conn: Connection, level: Level, params: LightingParams
    ) -> dict[str, UnitVerdict]:
        """Rate and verdict of every unit."""
        groups = rows(
            conn,
            _GROUPS.format(
                unit=unit_sql(level), join="JOIN grids g ON g.id = a.grid_id", where="TRUE"
            ),
            {},
        )
        return rated_units(groups, lambda unit_groups: self._judge(params, unit_groups))
