"""`lamp-spacing` (装灯率) and `bin-spacing`: gaps between consecutive assets along each road.

Both rules are one set-based SQL (`along_roads_sql`): every counted asset is related to a
road, located on it, ordered along it with window functions, and each stretch between two
consecutive assets (or between a road end and the nearest asset) longer than the allowed
spacing is a gap, returned as the line of road it covers with its geodesic length.

Semantics, and why:

- Relation: an asset belongs to the road its `road_code` names; an asset with no road code
  belongs to the nearest road within the profile's `road_tolerance_m`, geodesic: the roads
  within it are found as `layers.checks.near` finds them (the 2D index, the plane where
  clear, `ST_DWithin` on geography near the limit; never a cast in the predicate,
  TRAPS.md), the nearest by `ST_Distance` on geography; ties go to the lowest road id.
  Only road lamps that stand (placement `road`, status not `missing`; unlit and damaged
  poles are installed) and litter bins that are there (condition not `missing`; the kinds
  are a parameter) count.
- Location: `ST_LineLocatePoint` is planar, and in degrees a kerb-side lamp beside a
  diagonal road would land metres off its true foot, so road and assets are first scaled
  (longitude × N cos φ / M at the road's mid-latitude): locally conformal, so feet and order
  are right to millimetres over a road of a few kilometres.
- Lengths are geodesic: `ST_Length(geography)` of the substring of the road between the two
  feet, reported to the centimetre. A gap fails when that rounded length exceeds the allowed
  spacing (a gap of exactly the allowed spacing passes, "不大于"). Only stretches whose
  approximate length (fraction × geodesic road length, widened by a bound on its error that
  grows with the road's span in latitude: 0.16 % for 5 km north-south at 45°N) could exceed
  the allowed spacing are measured exactly, so the whole city costs one pass.
- Allowed spacing between two lamps: the smaller of their own allowances, each the factor of
  its light distribution (3 H cut-off, 3.5 H semi-cut-off, 4 H non-cut-off) times its pole
  height (the class's `default_pole_height_m` when unrecorded; the strictest factor when the
  distribution is unrecorded), capped by the class's `max_spacing_m` when the profile sets
  one. Bins: the class's `max_spacing_m`; classes without one are not checked.
- Ends: the stretch from a road end to its first (last) asset is a gap when it is longer
  than that asset's allowed spacing: the junction at the end is lit (or served) from the
  crossing road, as a neighbouring lamp would be. A road with no counted asset is one gap
  when it is longer than the class allowance (lamps: strictest factor × default height;
  bins: the class maximum).
- Scope: a road belongs to its grid (`grid_id`, the cell of its point-on-surface, kept by
  trigger): the responsible grid answers for the whole road. Roads run along grid
  boundaries in real cities (and in the demo), so cutting them by cells would count a
  boundary road twice or split it arbitrarily; whole roads keep per-unit totals additive.
  Assets relate to roads in scope wherever they stand.
- Verdict: per road class, lit (lamps) or served (bins) share = (length - gap length) /
  length; lamps pass when every class reaches the profile's `installation_rate`, bins when
  no gap is left.

Roads are LINESTRINGs (the column's type; the importer merges MultiLineString input into
one line or refuses it), as `ST_LineLocatePoint` needs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self

import orjson
from pydantic import Field, PositiveFloat, field_validator, model_validator
from sqlalchemy import Connection, text

from layers.catalog import BINS, ROADS, STREET_LAMPS
from layers.checks.framework import (
    FIRST_PAGE,
    CheckError,
    Level,
    Outcome,
    Page,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    group_by_unit,
    rows,
    scope_sql,
    unit_sql,
)
from layers.checks.near import box, shape_within
from layers.profile import RoadClass, RuleProfile

Distribution = Literal["cut_off", "semi_cut_off", "non_cut_off"]
BinKind = Literal["litter_bin", "closed_bin", "sorting_point", "collection_point"]

ROAD_CLASSES: tuple[str, ...] = ROADS.field("road_class").choice_keys()
DISTRIBUTIONS: tuple[str, ...] = STREET_LAMPS.field("light_distribution").choice_keys()

SLACK_M = 0.01
"""Metres added to the approximate length before it is compared (rounding to centimetres)."""

# Bound on the error of (fraction x geodesic road length) as a stretch's length, twice over:
# in the scaled space metres per unit vary only with latitude, by d ln(N cos φ / M)/dφ
# <= tan φ + 0.014 across and d ln M/dφ <= 0.011 along, over the road's span in latitude.
_SLACK = (
    "1 + 2 * (tan(radians(greatest(abs(ST_YMin(r.geom)), abs(ST_YMax(r.geom))))) + 0.03)"
    " * radians(ST_YMax(r.geom) - ST_YMin(r.geom))"
)


@dataclass(frozen=True)
class AlongRoads:
    """Which assets one spacing rule counts and how far apart they may stand.

    SQL fragments see the asset as `a` (`asset_allowed`: its columns as `{a}name`, `{a}`
    being `a.` or the `s.from_` / `s.to_` of a kept stretch) and its road as `r`;
    `r` carries the per-class values named in `class_values`, bound as float arrays
    `class_<name>` beside `classes`.
    """

    table: str
    counted: str
    """Which assets count, on columns that `<table>_on_roads` copies."""
    columns: tuple[str, ...]
    class_values: tuple[str, ...]
    asset_allowed: str
    """The spacing one asset allows, a format string of its columns' prefix `{a}`."""
    road_allowed: str
    stretches: str | None = None
    """The table of kept stretches between consecutive counted assets (0008), if any, with
    `from_`/`to_` copies of `columns`; it must count exactly as `counted` does
    (tests/layers/test_check_spacing.py checks)."""

    @property
    def positions(self) -> str:
        """The table the database keeps the assets' positions along their roads in (0008)."""
        return f"{self.table}_on_roads"


def roads_sql(spec: AlongRoads, where: str) -> str:
    """The roads in scope whose class has an allowance, with the values the rules need.

    `road_m` is the geodesic length, `slack` the bound on how far a fraction of it may be
    off a stretch's geodesic length; `kx` the longitude scale at the road's latitude
    (`civic_gis_road_kx`, the one fractions along the road are located with) and `sgeom`
    the road scaled by it (SRID 0); the class values come from bound arrays.
    """
    class_names = ", ".join(spec.class_values)
    class_arrays = ", ".join(f"CAST(:class_{v} AS float8[])" for v in spec.class_values)
    class_cols = ", ".join(f"c.{v}" for v in spec.class_values)
    return f"""
        SELECT r.id, r.code, r.name, r.road_class, r.grid_id, ST_Length(r.geog) AS road_m,
               {_SLACK} AS slack, {class_cols}, k.kx,
               ST_SetSRID(ST_Scale(r.geom, k.kx, 1), 0) AS sgeom
        FROM roads r
        JOIN unnest(CAST(:classes AS text[]), {class_arrays}) AS c(road_class, {class_names})
            ON c.road_class = r.road_class
        CROSS JOIN LATERAL (SELECT civic_gis_road_kx(r.geom) AS kx) k
        WHERE {where}"""


def along_roads_sql(spec: AlongRoads, where: str) -> str:
    """CTEs ending in `found`: the gaps longer than allowed, with their geometry.

    `r` is the roads in scope (with `road_m`, their geodesic length); `found` has one row
    per failing stretch: road, the asset codes at each end (NULL at a road end), the
    fractions `f1`/`f2`, `allowed_m`, `length_m` and `start_m` (geodesic, centimetres),
    `raw_m` (unrounded, for sums) and `geom` (EPSG:4326). Binds `tolerance`, `classes` and
    the class arrays.

    Each road contributes two sentinel points, its start (f = 0) and end (f = 1), so one
    window over roads and assets yields every stretch: between assets, at the ends, and the
    whole of a road without assets. Assets with a road code are read where the database
    keeps them along it (`<table>_on_roads`, migration 0008: no locating at run time);
    those without one are related to the nearest road and located now, with the same
    function. When the database also keeps the stretches (`spec.stretches`: lamps), only
    the roads that such a code-less asset joins go through the window; every other road's
    stretches are read as kept, which spares sorting and walking 600,000 positions. The
    big joins read roads through a subquery rather than the CTE, so the planner knows
    their row count (a CTE's is a guess, which made it sort and merge 25 million
    estimated rows).
    """
    cols = "".join(f", a.{c}" for c in spec.columns)
    roads = roads_sql(spec, where)
    mine = "a.road_id IN (SELECT road_id FROM extra)" if spec.stretches else "TRUE"
    sentinels = "r.id IN (SELECT road_id FROM extra)" if spec.stretches else "TRUE"
    kept = ""
    if spec.stretches:
        first = spec.asset_allowed.format(a="s.from_")
        second = spec.asset_allowed.format(a="s.to_")
        kept = f"""
    UNION ALL
    SELECT s.road_id, s.from_id, s.to_id, s.f1, s.f2,
           least(CASE WHEN s.from_id IS NOT NULL THEN {first} END,
                 CASE WHEN s.to_id IS NOT NULL THEN {second} END),
           r.road_m * r.slack
    FROM {spec.stretches} s
    JOIN ({roads}
        OFFSET 0) r ON r.id = s.road_id
    WHERE s.road_id NOT IN (SELECT road_id FROM extra)"""
    return f"""
WITH r AS MATERIALIZED ({roads}
),
extra AS MATERIALIZED (
    -- Counted assets without a road code: the nearest road within the tolerance, found
    -- as in `layers.checks.near`.
    SELECT a.id, q.id AS road_id, civic_gis_road_fraction(q.geom, a.geom) AS f{cols}
    FROM {spec.table} a
    CROSS JOIN LATERAL (
        SELECT q.id, q.geom FROM roads q
        WHERE q.geom && {box("a.geom", ":tolerance")}
          AND {shape_within("q", "a", ":tolerance")}
        ORDER BY ST_Distance(q.geog, a.geog), q.id
        LIMIT 1) q
    WHERE a.road_code IS NULL AND {spec.counted}
),
rel AS (
    SELECT a.id, a.road_id, a.f{cols}
    FROM {spec.positions} a
    WHERE {spec.counted} AND {mine}
    UNION ALL
    SELECT * FROM extra
),
pts AS (
    SELECT r.id AS road_id, a.id, r.road_m * r.slack AS reach_m,
           {spec.asset_allowed.format(a="a.")} AS allowed_m, a.f, 1 AS k
    FROM rel a
    JOIN ({roads}
        OFFSET 0) r ON r.id = a.road_id
    UNION ALL
    SELECT r.id, NULL, r.road_m * r.slack, NULL, e.f, e.k
    FROM r
    CROSS JOIN (VALUES (0.0::float8, 0), (1.0::float8, 2)) AS e(f, k)
    WHERE {sentinels}
),
seg AS (
    SELECT road_id, lag(id) OVER o AS from_id, id AS to_id, lag(f) OVER o AS f1, f AS f2,
           least(lag(allowed_m) OVER o, allowed_m) AS allowed_m, reach_m, k
    FROM pts
    WINDOW o AS (PARTITION BY road_id ORDER BY f, k, id)
),
stretch AS (
    SELECT road_id, from_id, to_id, f1, f2, allowed_m, reach_m
    FROM seg
    WHERE k > 0{kept}
),
measured AS MATERIALIZED (
    SELECT s.road_id, s.from_id, s.to_id, s.f1, s.f2, x.allowed_m, x.geom,
           ST_Length(x.geom::geography) AS raw_m
    FROM stretch s
    JOIN r ON r.id = s.road_id
    CROSS JOIN LATERAL (
        SELECT coalesce(s.allowed_m, {spec.road_allowed}) AS allowed_m,
               {_unscaled("ST_LineSubstring(r.sgeom, s.f1, s.f2)")} AS geom
    ) x
    WHERE (s.allowed_m IS NULL
           OR (s.f2 - s.f1) * s.reach_m + {SLACK_M!r} > s.allowed_m)
),
found AS (
    SELECT m.road_id, r.code AS road_code, r.name AS road_name, r.road_class, r.grid_id,
           (SELECT code FROM {spec.table} WHERE id = m.from_id) AS from_code,
           (SELECT code FROM {spec.table} WHERE id = m.to_id) AS to_code,
           m.f1, m.f2, m.allowed_m, m.raw_m, m.geom,
           round(m.raw_m::numeric, 2)::float8 AS length_m,
           round(ST_Length(
               {_unscaled("ST_LineSubstring(r.sgeom, 0, m.f1)")}::geography
           )::numeric, 2)::float8 AS start_m
    FROM measured m
    JOIN r ON r.id = m.road_id
    WHERE round(m.raw_m::numeric, 2) > m.allowed_m
)
"""


def _unscaled(geom: str) -> str:
    """A geometry of the scaled space (`r.sgeom`, SRID 0) back in EPSG:4326."""
    return f"ST_SetSRID(ST_Scale({geom}, 1 / r.kx, 1), 4326)"


def _evidence_sql(spec: AlongRoads, where: str) -> str:
    """Every gap (their lengths make the figures), by road and place; one page is drawn."""
    return (
        along_roads_sql(spec, where)
        + """
SELECT CASE WHEN g.n > :evidence_offset AND g.n <= :evidence_offset + :evidence_limit
            THEN ST_AsGeoJSON(g.geom, 9) END AS geometry,
       g.road_code, g.road_name, g.road_class,
       gr.code AS grid_code, g.from_code, g.to_code, g.start_m, g.length_m,
       round(g.allowed_m::numeric, 2)::float8 AS allowed_m, g.raw_m
FROM (SELECT found.*, row_number() OVER (ORDER BY road_code, f1) AS n FROM found) g
LEFT JOIN grids gr ON gr.id = g.grid_id
ORDER BY g.n
"""
    )


def _totals_sql(spec: AlongRoads, where: str, unit: str, join: str, gaps: bool) -> str:
    """Road count and length per unit and class; with `gaps`, the gap count and length."""
    if not gaps:
        return f"""
WITH r AS ({roads_sql(spec, where)}
)
SELECT {unit} AS unit, r.road_class, count(*) AS roads, sum(r.road_m) AS length_m,
       0.0 AS gap_m, 0 AS gaps
FROM r
{join}
GROUP BY 1, 2
"""
    return (
        along_roads_sql(spec, where)
        + f"""
SELECT {unit} AS unit, r.road_class, count(*) AS roads, sum(r.road_m) AS length_m,
       coalesce(sum(x.gap_m), 0) AS gap_m, coalesce(sum(x.gaps), 0) AS gaps
FROM r
LEFT JOIN (SELECT road_id, sum(raw_m) AS gap_m, count(*) AS gaps FROM found GROUP BY 1) x
    ON x.road_id = r.id
{join}
GROUP BY 1, 2
"""
    )


@contextmanager
def _without_jit(conn: Connection) -> Iterator[None]:
    """JIT off for the spacing queries of this transaction, then as it was.

    Their estimated costs are large (600,000 lamps through PostGIS functions), so the
    server JIT-compiles them: 5.6 s of a 14 s run on the large demo city, for a query that
    needs none. On an error the rollback restores the setting.
    """
    old = conn.execute(text("SELECT current_setting('jit')")).scalar_one()
    conn.execute(text("SELECT set_config('jit', 'off', true)"))
    yield
    conn.execute(text("SELECT set_config('jit', :old, true)"), {"old": old})


def _position(p: dict[str, Any]) -> str:
    """Where the stretch lies: between two assets, at a road end, or the whole road."""
    if p["from_code"] and p["to_code"]:
        return "between"
    if p["to_code"]:
        return "start"
    return "end" if p["from_code"] else "whole_road"


def _judge(
    groups: list[dict[str, Any]], threshold: float, word: str
) -> tuple[dict[str, Any], bool | None]:
    """Covered share of road length per class against `threshold` (`word`: lit, served)."""
    per_class: dict[str, Any] = {}
    passed: bool | None = None
    for g in sorted(groups, key=lambda r: ROAD_CLASSES.index(r["road_class"])):
        length = float(g["length_m"])
        gap = min(float(g["gap_m"]), length)  # a whole road's gap is its length, to rounding
        share = (length - gap) / length if length > 0 else None
        ok = share is None or share >= threshold - 1e-12
        per_class[g["road_class"]] = {
            "roads": int(g["roads"]),
            "length_m": round(length, 2),
            "gap_m": round(gap, 2),
            f"{word}_m": round(length - gap, 2),
            f"{word}_share": None if share is None else round(share, 6),
            "gaps": int(g["gaps"]),
            "threshold": threshold,
            "passed": ok,
        }
        passed = ok if passed is None else passed and ok
    length = sum(float(g["length_m"]) for g in groups)
    gap = sum(min(float(g["gap_m"]), float(g["length_m"])) for g in groups)
    summary = {
        "roads": sum(int(g["roads"]) for g in groups),
        "length_m": round(length, 2),
        "gap_m": round(gap, 2),
        f"{word}_share": round((length - gap) / length, 6) if length > 0 else None,
        "gaps": sum(int(g["gaps"]) for g in groups),
        "classes": per_class,
    }
    return summary, passed


class _SpacingRule(Rule):
    """The shared evaluation of both spacing rules; subclasses say what counts and how far."""

    asset_zh: str
    asset_en: str
    covered: str
    """What a stretch within the spacing is, in the summary's keys: lit, served."""

    @abstractmethod
    def _spec(self, params: Any) -> AlongRoads:
        """The assets that count and their allowances."""

    @abstractmethod
    def _bind(self, params: Any) -> dict[str, Any]:
        """The bound parameters of `_spec`'s SQL."""

    @abstractmethod
    def _threshold(self, params: Any) -> float:
        """The lit share every class must reach."""

    def _reason(self, p: dict[str, Any]) -> str:
        """Why a stretch fails, in Chinese / English."""
        length, allowed = p["length_m"], p["allowed_m"]
        limit_zh = f"超过允许间距 {allowed:.2f} 米"
        limit_en = f"more than the allowed {allowed:.2f} m"
        a_zh, a_en = self.asset_zh, self.asset_en
        if p["from_code"] and p["to_code"]:
            return (
                f"{a_zh} {p['from_code']} 与 {p['to_code']} 间距 {length:.2f} 米, {limit_zh} / "
                f"{length:.2f} m between {a_en}s {p['from_code']} and {p['to_code']}, {limit_en}"
            )
        if p["to_code"]:
            return (
                f"道路起点至{a_zh} {p['to_code']} {length:.2f} 米, {limit_zh} / {length:.2f} m "
                f"from the start of the road to {a_en} {p['to_code']}, {limit_en}"
            )
        if p["from_code"]:
            return (
                f"{a_zh} {p['from_code']} 至道路终点 {length:.2f} 米, {limit_zh} / {length:.2f} m "
                f"from {a_en} {p['from_code']} to the end of the road, {limit_en}"
            )
        return (
            f"整条道路 {length:.2f} 米无{a_zh}, {limit_zh} / no {a_en} along the whole "
            f"{length:.2f} m road, {limit_en}"
        )

    def evaluate(
        self, conn: Connection, scope: Scope, params: Any, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Lit share per road class in scope; the failing stretches as lines, by road."""
        where, bind = scope_sql(scope, "r.grid_id")
        spec = self._spec(params)
        bind = {**bind, **self._bind(params)}
        with _without_jit(conn):
            gaps = rows(conn, _evidence_sql(spec, where), {**bind, **page.bind()})
            groups = rows(conn, _totals_sql(spec, where, "'scope'", "", gaps=False), bind)
        for g in groups:
            mine = [p for p in gaps if p["road_class"] == g["road_class"]]
            g["gap_m"] = sum(p["raw_m"] for p in mine)
            g["gaps"] = len(mine)
        evidence = []
        for p in page.of(gaps):
            geometry = orjson.loads(p.pop("geometry"))
            del p["raw_m"]
            p["at"] = _position(p)
            p["reason"] = self._reason(p)
            evidence.append({"type": "Feature", "geometry": geometry, "properties": p})
        summary, passed = _judge(groups, self._threshold(params), self.covered)
        return Outcome(summary, passed, evidence, len(gaps))

    def by_unit(self, conn: Connection, level: Level, params: Any) -> dict[str, UnitVerdict]:
        """Lit share and verdict of every unit that has roads (roads by their grid)."""
        sql = _totals_sql(
            self._spec(params), "TRUE", unit_sql(level), "JOIN grids g ON g.id = r.grid_id", True
        )
        with _without_jit(conn):
            groups = rows(conn, sql, self._bind(params))
        by = group_by_unit(groups)
        verdicts = {}
        for unit, unit_groups in by.items():
            summary, passed = _judge(unit_groups, self._threshold(params), self.covered)
            verdicts[unit] = UnitVerdict(
                summary[f"{self.covered}_share"], passed, f"{summary['gaps']} gaps"
            )
        return verdicts


class LampSpacingParams(Params):
    """Spacing factors, default pole heights and caps per class, relation tolerance, rate."""

    spacing_factor: dict[Distribution, PositiveFloat] = Field(
        description="max spacing / pole height, per light distribution"
    )
    default_pole_height_m: dict[RoadClass, PositiveFloat] = Field(
        description="pole height of lamps without one, per road class"
    )
    max_spacing_m: dict[RoadClass, PositiveFloat] = Field(
        default_factory=dict, description="optional cap on the spacing, per road class"
    )
    road_tolerance_m: PositiveFloat = Field(description="a lamp without road belongs within")
    installation_rate: float = Field(ge=0, le=1, description="lit share of road length")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """Every lamp must get an allowance: all distributions and classes need a value."""
        for name, have, need in (
            ("spacing_factor", self.spacing_factor, DISTRIBUTIONS),
            ("default_pole_height_m", self.default_pole_height_m, ROAD_CLASSES),
        ):
            missing = [k for k in need if k not in have]
            if missing:
                raise ValueError(f"{name} lacks {', '.join(missing)}")
        return self


class LampSpacing(_SpacingRule):
    """装灯率: road length lit by lamps no farther apart than factor × pole height."""

    id = "lamp-spacing"
    relative_cost = 2.8
    zh = "装灯率"
    en = "Lamp installation (spacing)"
    description = (
        "道路上相邻路灯间距不大于 3H/3.5H/4H (截光/半截光/非截光) 的路段占比; 超距路段为缺口 / "
        "share of road length whose consecutive lamps are within the allowed spacing; gaps as lines"
    )
    params_model = LampSpacingParams
    asset_zh = "路灯"
    asset_en = "lamp"
    covered = "lit"

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Spacing factors, heights, caps, tolerance and rate from the profile."""
        lamps = profile.lamps
        return {
            "spacing_factor": dict(lamps.spacing_factor),
            "default_pole_height_m": dict(lamps.default_pole_height_m),
            "max_spacing_m": dict(lamps.max_spacing_m),
            "road_tolerance_m": lamps.road_tolerance_m,
            "installation_rate": lamps.installation_rate,
        }

    def _spec(self, params: LampSpacingParams) -> AlongRoads:
        factor = " ".join(
            f"WHEN '{d}' THEN CAST(:factor_{d} AS float8)" for d in params.spacing_factor
        )
        return AlongRoads(
            table=STREET_LAMPS.table,
            counted="a.placement = 'road' AND a.status <> 'missing'",
            columns=("pole_height_m", "light_distribution"),
            class_values=("pole_m", "cap_m"),
            asset_allowed=(
                f"least(CASE {{a}}light_distribution {factor} ELSE "
                "CAST(:factor_unknown AS float8) END * coalesce({a}pole_height_m, r.pole_m), "
                "r.cap_m)"
            ),
            road_allowed="least(CAST(:factor_unknown AS float8) * r.pole_m, r.cap_m)",
            stretches="lamp_stretches",
        )

    def _bind(self, params: LampSpacingParams) -> dict[str, Any]:
        classes = list(params.default_pole_height_m)
        return {
            "tolerance": params.road_tolerance_m,
            "classes": classes,
            "class_pole_m": [params.default_pole_height_m[c] for c in classes],
            "class_cap_m": [params.max_spacing_m.get(c) for c in classes],
            "factor_unknown": min(params.spacing_factor.values()),
            **{f"factor_{d}": v for d, v in params.spacing_factor.items()},
        }

    def _threshold(self, params: LampSpacingParams) -> float:
        return params.installation_rate


class BinSpacingParams(Params):
    """Maximum gap between bins per road class, which kinds count, relation tolerance."""

    max_spacing_m: dict[RoadClass, PositiveFloat] = Field(
        description="per road class; classes without a value are not checked"
    )
    road_tolerance_m: PositiveFloat = Field(description="a bin without road belongs within")
    kinds: tuple[BinKind, ...] = Field(
        # Closed bins (封闭式垃圾箱) serve passers-by like litter bins: both count by default.
        default=("litter_bin", "closed_bin"),
        min_length=1,
        description="bin kinds that count (comma list)",
    )

    @field_validator("kinds", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """Per-request overrides are strings: 'litter_bin,closed_bin'."""
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value


class BinSpacing(_SpacingRule):
    """Gaps between litter bins along roads longer than the class spacing (CJJ 27)."""

    id = "bin-spacing"
    relative_cost = 1.05
    zh = "果皮箱间距"
    en = "Litter bin spacing"
    description = (
        "道路沿线相邻果皮箱间距超过该等级道路最大间距的路段 / stretches of road between "
        "litter bins longer than the class maximum, as lines"
    )
    params_model = BinSpacingParams
    asset_zh = "果皮箱"
    asset_en = "litter bin"
    covered = "served"

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Spacing per class and tolerance from the profile; litter bins count."""
        return {
            "max_spacing_m": dict(profile.bins.max_spacing_m),
            "road_tolerance_m": profile.bins.road_tolerance_m,
            "kinds": list(BinSpacingParams.model_fields["kinds"].default),
        }

    def _spec(self, params: BinSpacingParams) -> AlongRoads:
        return AlongRoads(
            table=BINS.table,
            counted="a.kind = ANY(CAST(:kinds AS text[])) AND a.condition <> 'missing'",
            columns=(),
            class_values=("max_m",),
            asset_allowed="r.max_m",
            road_allowed="r.max_m",
        )

    def _bind(self, params: BinSpacingParams) -> dict[str, Any]:
        classes = list(params.max_spacing_m)
        if not classes:
            raise CheckError("parameters of bin-spacing: max_spacing_m sets no road class")
        return {
            "tolerance": params.road_tolerance_m,
            "classes": classes,
            "class_max_m": [params.max_spacing_m[c] for c in classes],
            "kinds": list(params.kinds),
        }

    def _threshold(self, params: BinSpacingParams) -> float:
        return 1.0
