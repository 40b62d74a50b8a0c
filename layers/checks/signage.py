"""Signage rules: `signage-quota` (boards per place) and `signage-entrances` (boards at gates).

Seed 003: at least 20 fixed boards per community, 10 per residential compound,
2 per building, placed "at the entrances people walk through".

A board counts when it is fixed (固定展板) and not `missing`; a damaged board is
still standing and counts (its repair is another matter).

`signage-quota` checks three kinds of place against the profile's quotas:
- a community: the boards whose grid cell (grid_id, kept by trigger) belongs to
  it. The communities checked are those with a grid cell in scope, and each is
  counted whole, so a grid scope (and a grid's scorecard) carries its
  community's verdict;
- a residential compound in scope: the boards inside its polygon
  (`ST_Intersects` on the indexed geometry: containment, not a distance);
- a residential building in scope: the boards "on" it, i.e. within
  `building_distance_m` (default 5 m: a board on the wall or at the door, as
  geolocated by a phone) of the footprint, geodesic, `ST_DWithin` on `geog`.
Nested places count the same board: a board on a building inside a compound
counts for the building, the compound and the community.

`signage-entrances`: a board is "at an entrance" when any entrance lies within
`entrance_distance_m` of it (geodesic). The rule passes when every entrance of
an owner of `entrance_owners` (compounds and schools by default: the gates
people walk through; building doors and shop fronts are reported but not
required) has a board within that distance. Each such entrance is drawn with
the nearest board, if one stands within 5 x that distance (100 m by default).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Connection

from layers.catalog import ENTRANCES
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
    figures_and_evidence,
    grid_units,
    rows,
    scope_sql,
    unit_sql,
)
from layers.checks.near import (
    SIGNAGE_BUILDINGS,
    SIGNAGE_COMPOUNDS,
    SIGNAGE_ENTRANCES,
    box,
    kept,
    kept_pairs,
    kept_within,
    points_within,
    shape_within,
)
from layers.profile import RuleProfile

BOARD = "s.fixed AND s.condition <> 'missing'"

# Evidence names the nearest board out to this many times the entrance distance.
NEAREST_FACTOR = 5.0

PLACE_ZH = {"community": "社区", "compound": "小区", "building": "楼栋"}
OWNER_LABEL = {c.key: (c.zh, c.en) for c in ENTRANCES.field("owner_layer").choices}


class QuotaParams(Params):
    """Minimum fixed boards per community, compound and building."""

    community_quota: int = Field(ge=0)
    compound_quota: int = Field(ge=0)
    building_quota: int = Field(ge=0)
    building_distance_m: float = Field(gt=0)


def _cells_where(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Grid cells of the communities the scope touches (a grid scope widens to its community)."""
    if scope.prefix is None:
        return "TRUE", {}
    return "g.code LIKE :community_prefix", {"community_prefix": scope.prefix[:12] + "%"}


# Boards per place: (id, code, grid_id, boards) for every place checked, without
# geometry (only the page of places under quota is drawn, by joining back).
_COMMUNITY_BOARDS = f"""
SELECT NULL::bigint AS id, {unit_sql("community")} AS code, NULL::bigint AS grid_id,
       count(s.id) AS boards
FROM grids g
LEFT JOIN signage s ON s.grid_id = g.id AND {BOARD}
WHERE g.level = 'grid' AND {{where}}
GROUP BY 2
"""

# Containment (`ST_Intersects`, not a distance): the pairs the database keeps.
_COMPOUND_BOARDS = f"""
SELECT a.id, a.code, a.grid_id, count(s.id) AS boards
FROM compounds a
LEFT JOIN (near_pairs n JOIN signage s ON s.id = n.a_id AND {BOARD})
    ON {kept_pairs("n", SIGNAGE_COMPOUNDS)} AND n.b_id = a.id
WHERE a.residential AND {{where}}
GROUP BY a.id
"""

# Boards within building_distance_m of a footprint, geodesic (`layers.checks.near`):
# within the reach of the kept pairs, from those; else measured, city-wide driven from the
# boards (fewer than the buildings) probing the buildings' index, for a scope from its few
# buildings probing the boards' index.
_KEPT_BUILDING_BOARDS = f"""
SELECT a.id, a.code, a.grid_id, count(s.id) AS boards
FROM buildings a
LEFT JOIN (near_pairs n JOIN signage s ON s.id = n.a_id AND {BOARD})
    ON {kept_pairs("n", SIGNAGE_BUILDINGS)} AND n.b_id = a.id
   AND {kept_within("n", ":building_distance_m", "signage", "buildings")}
WHERE a.residential AND {{where}}
GROUP BY a.id
"""

_BOARDS_ON_ALL_BUILDINGS = f"""
SELECT a.id, count(*) AS boards
FROM signage s
JOIN buildings a ON a.geom && {box("s.geom", ":building_distance_m")}
WHERE {BOARD} AND a.residential AND {shape_within("a", "s", ":building_distance_m")}
GROUP BY a.id
"""

_ALL_BUILDING_BOARDS = f"""
SELECT a.id, a.code, a.grid_id, coalesce(n.boards, 0) AS boards
FROM buildings a
LEFT JOIN ({_BOARDS_ON_ALL_BUILDINGS}) n ON n.id = a.id
WHERE a.residential
"""

_SCOPE_BUILDING_BOARDS = f"""
SELECT a.id, a.code, a.grid_id, (
    SELECT count(*) FROM signage s
    WHERE s.geom && {box("a.geom", ":building_distance_m")} AND {BOARD}
      AND {shape_within("a", "s", ":building_distance_m")}) AS boards
FROM buildings a
WHERE a.residential AND {{where}}
"""


def _building_boards(conn: Connection, where: str, params: QuotaParams) -> str:
    """(id, code, grid_id, boards) of the residential buildings `where` keeps."""
    if kept(conn, SIGNAGE_BUILDINGS, params.building_distance_m):
        return _KEPT_BUILDING_BOARDS.format(where=where)
    return _ALL_BUILDING_BOARDS if where == "TRUE" else _SCOPE_BUILDING_BOARDS.format(where=where)


# How each kind of place under quota is drawn: its shape, name and grid, from the page.
_DRAWN = {
    "community": (
        "coalesce(cg.geom, (SELECT ST_Multi(ST_Union(c.geom)) FROM grids c "
        "WHERE c.level = 'grid' AND c.code LIKE left(n.code, 12) || '%'))",
        "cg.name",
        "LEFT JOIN grids cg ON cg.code = n.code AND cg.level = 'community'",
    ),
    "compound": ("x.geom", "x.name", "JOIN compounds x ON x.id = n.id"),
    "building": ("x.geom", "x.name", "JOIN buildings x ON x.id = n.id"),
}

# How many places were checked and are under quota, and one page of the latter, by code.
_PLACES = f"""
WITH n AS MATERIALIZED ({{counts}})
SELECT count(*) AS checked, count(*) FILTER (WHERE n.boards < :{{place}}_quota) AS under,
       (SELECT json_agg(json_build_object(
            'geometry', ST_AsGeoJSON({{shape}}, 9)::json, 'place', '{{place}}', 'code', n.code,
            'name', {{name}}, 'boards', n.boards, 'grid_code', g.code
        ) ORDER BY n.code)
        FROM (SELECT * FROM n WHERE n.boards < :{{place}}_quota
              {PAGE_SQL.format(order="n.code")}) n
        {{join}}
        LEFT JOIN grids g ON g.id = n.grid_id) AS evidence
FROM n
"""

_UNDER_BY_UNIT = """
WITH cells AS (
    SELECT g.id, {unit} AS unit, {community} AS community
    FROM grids g WHERE g.level = 'grid'
), under AS (
    SELECT DISTINCT c.unit, 'community' AS place
    FROM cells c JOIN ({communities}) m ON m.code = c.community
    WHERE m.boards < :community_quota
    UNION ALL
    SELECT c.unit, 'compound' FROM ({compounds}) x
    JOIN cells c ON c.id = x.grid_id
    WHERE x.boards < :compound_quota
    UNION ALL
    SELECT c.unit, 'building' FROM ({buildings}) x
    JOIN cells c ON c.id = x.grid_id
    WHERE x.boards < :building_quota
)
SELECT x.unit, x.place, count(*) AS n
FROM under x
GROUP BY 1, 2
"""


class SignageQuota(Rule):
    """Fixed boards per community, residential compound and residential building."""

    id = "signage-quota"
    relative_cost = 0.6
    zh = "公益广告设置数量"
    en = "Signage quotas"
    description = (
        "社区≥20、小区≥10、楼栋≥2 块固定展板 / fixed boards per community, compound "
        "and building against the quotas"
    )
    params_model = QuotaParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Quotas, and how near a footprint a board counts as on the building, from the profile."""
        s = profile.signage
        return {
            "community_quota": s.community_quota,
            "compound_quota": s.compound_quota,
            "building_quota": s.building_quota,
            "building_distance_m": s.building_distance_m,
        }

    def _bind(self, params: QuotaParams) -> dict[str, Any]:
        return params.model_dump()

    def evaluate(
        self, conn: Connection, scope: Scope, params: QuotaParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Counts per place in scope; the places under quota (polygons) as evidence.

        Evidence runs communities, compounds, buildings, each by code: the page is cut
        from that sequence, kind after kind.
        """
        where, bind = scope_sql(scope)
        cells_where, cells_bind = _cells_where(scope)
        bind = {**bind, **cells_bind, **self._bind(params)}
        quota = {
            "community": params.community_quota,
            "compound": params.compound_quota,
            "building": params.building_quota,
        }
        counts = {
            "community": _COMMUNITY_BOARDS.format(where=cells_where),
            "compound": _COMPOUND_BOARDS.format(where=where),
            "building": _building_boards(conn, where, params),
        }
        summary: dict[str, Any] = {}
        evidence = []
        total = 0
        for kind, sql in counts.items():
            shape, name, join = _DRAWN[kind]
            query = _PLACES.format(counts=sql, place=kind, shape=shape, name=name, join=join)
            found = rows(conn, query, {**bind, **page.after(total).bind()})[0]
            summary[kind] = {
                "checked": int(found["checked"]),
                "under_quota": int(found["under"]),
                "quota": quota[kind],
            }
            total += int(found["under"])
            for p in found["evidence"] or []:
                geometry = p.pop("geometry")
                p["quota"] = quota[kind]
                p["reason"] = (
                    f"{PLACE_ZH[kind]}固定展板 {p['boards']} 块, 少于 {quota[kind]} 块 / "
                    f"{kind} has {p['boards']} fixed boards, quota {quota[kind]}"
                )
                evidence.append({"type": "Feature", "geometry": geometry, "properties": p})
        checked = sum(summary[k]["checked"] for k in quota)
        summary["building_distance_m"] = params.building_distance_m
        passed = None if not checked else total == 0
        return Outcome(summary, passed, evidence, total)

    def by_unit(
        self, conn: Connection, level: Level, params: QuotaParams
    ) -> dict[str, UnitVerdict]:
        """Places under quota per unit (a unit carries the verdict of its communities)."""
        sql = _UNDER_BY_UNIT.format(
            unit=unit_sql(level),
            community=unit_sql("community"),
            communities=_COMMUNITY_BOARDS.format(where="TRUE"),
            compounds=_COMPOUND_BOARDS.format(where="TRUE"),
            buildings=_building_boards(conn, "TRUE", params),
        )
        found = rows(conn, sql, self._bind(params))
        # Units are listed apart and merged here: a LEFT JOIN of every unit to the
        # places under quota misleads the planner into a nested loop.
        units = grid_units(conn, level)
        under: dict[str, dict[str, int]] = {unit: dict.fromkeys(PLACE_ZH, 0) for unit in units}
        for r in found:
            under.setdefault(r["unit"], dict.fromkeys(PLACE_ZH, 0))[r["place"]] = int(r["n"])
        verdicts = {}
        for unit, n in under.items():
            total = sum(n.values())
            note = (
                f"under quota: {n['community']} communities, {n['compound']} compounds, "
                f"{n['building']} buildings"
                if total
                else ""
            )
            verdicts[unit] = UnitVerdict(float(total), total == 0, note)
        return verdicts


class EntranceParams(Params):
    """How near an entrance a board must stand, and whose entrances need one."""

    entrance_distance_m: float = Field(gt=0)
    entrance_owners: list[str] = Field(default_factory=lambda: ["compounds", "schools"])

    _split = field_validator("entrance_owners", mode="before")(comma_list)

    @field_validator("entrance_owners")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in OWNER_LABEL]
        if unknown:
            raise ValueError(f"entrance owners must be among {', '.join(OWNER_LABEL)}")
        return value


# Board-entrance pairs within the distance, geodesic, computed once for both counts
# (boards at an entrance, entrances with a board). Within the reach of the kept pairs
# (`layers.checks.near`), from those; else measured: city-wide driven from the boards, each
# probing the entrances' index (the planner left to itself probes the board index once
# per entrance, several times the work); for a scope, the pairs touching it, driven from
# the few entrances and boards in it.
_KEPT_PAIRS = f"""
SELECT n.a_id AS board, n.b_id AS entrance
FROM near_pairs n
JOIN signage s ON s.id = n.a_id
JOIN entrances a ON a.id = n.b_id
WHERE {kept_pairs("n", SIGNAGE_ENTRANCES)} AND {BOARD}
  AND {kept_within("n", ":distance", "signage", "entrances")}
  AND ({{where}} OR {{board_where}})
"""

_ALL_PAIRS = f"""
SELECT s.id AS board, a.id AS entrance
FROM signage s
JOIN entrances a ON a.geom && {box("s.geom", ":distance")}
WHERE {BOARD} AND {points_within("s", "a", ":distance")}
"""

_SCOPE_PAIRS = f"""
SELECT s.id AS board, a.id AS entrance
FROM entrances a
JOIN signage s ON s.geom && {box("a.geom", ":distance")} AND {BOARD}
     AND {points_within("a", "s", ":distance")}
WHERE {{where}}
UNION
SELECT s.id, a.id
FROM signage s
JOIN entrances a ON a.geom && {box("s.geom", ":distance")}
     AND {points_within("s", "a", ":distance")}
WHERE {BOARD} AND {{board_where}}
"""


def _pairs(conn: Connection, scope: Scope, distance: float) -> tuple[str, str, dict[str, Any]]:
    """The pairs query for a scope, the scope's WHERE on entrances `a`, and its parameters."""
    where, bind = scope_sql(scope)
    board_where, _ = scope_sql(scope, "s.grid_id")
    if kept(conn, SIGNAGE_ENTRANCES, distance):
        return _KEPT_PAIRS.format(where=where, board_where=board_where), where, bind
    if scope.prefix is None:
        return _ALL_PAIRS, where, bind
    return _SCOPE_PAIRS.format(where=where, board_where=board_where), where, bind


_ENTRANCES = """
WITH pairs AS MATERIALIZED ({pairs})
SELECT {unit} AS unit, a.owner_layer, count(*) AS entrances, count(h.entrance) AS with_board
FROM entrances a
LEFT JOIN (SELECT DISTINCT entrance FROM pairs) h ON h.entrance = a.id
{join}
WHERE {where}
GROUP BY 1, 2
"""

# The owner's name, from whichever table owner_layer names.
_OWNER_NAME = ", ".join(
    f"(SELECT o.name FROM {t} o WHERE a.owner_layer = '{t}' AND o.code = a.owner_code)"
    for t in OWNER_LABEL
)

# Counts, then one page (by code) of the required entrances without a board, each
# drawn with the nearest board within NEAREST_FACTOR x the distance (a bounded index
# search: an unbounded KNN per entrance costs more than the whole check when most
# gates lack boards).
_ENTRANCES_WITH_EVIDENCE = f"""
WITH pairs AS MATERIALIZED ({{pairs}}),
e AS MATERIALIZED (
    SELECT a.id, a.code, a.owner_layer, h.entrance IS NOT NULL AS has_board
    FROM entrances a
    LEFT JOIN (SELECT DISTINCT entrance FROM pairs) h ON h.entrance = a.id
    WHERE {{where}}
),
missing AS MATERIALIZED (
    SELECT e.id, e.code FROM e
    WHERE NOT e.has_board AND e.owner_layer = ANY(CAST(:owners AS text[]))
)
SELECT (SELECT count(*) FROM signage s WHERE {BOARD} AND {{board_where}}) AS boards,
       (SELECT count(*) FROM (SELECT DISTINCT board FROM pairs) h
        JOIN signage s ON s.id = h.board WHERE {{board_where}}) AS at_entrances,
       (SELECT json_agg(t ORDER BY t.owner_layer) FROM (
            SELECT e.owner_layer, count(*) AS entrances,
                   count(*) FILTER (WHERE e.has_board) AS with_board
            FROM e GROUP BY 1
       ) t) AS groups,
       (SELECT count(*) FROM missing) AS missing,
       (SELECT json_agg(u ORDER BY u.code) FROM (
            SELECT ST_AsGeoJSON(a.geom, 9)::json AS geometry, a.code, a.name, a.kind,
                   a.owner_layer, a.owner_code, coalesce({_OWNER_NAME}) AS owner_name,
                   g.code AS grid_code, n.code AS nearest_board,
                   round(n.distance_m::numeric, 2)::float8 AS distance_m
            FROM (SELECT * FROM missing {PAGE_SQL.format(order="missing.code")}) m
            JOIN entrances a ON a.id = m.id
            LEFT JOIN grids g ON g.id = a.grid_id
            LEFT JOIN LATERAL (
                SELECT s.code, ST_Distance(s.geog, a.geog) AS distance_m
                FROM signage s
                WHERE {BOARD} AND ST_DWithin(s.geog, a.geog, :search)
                ORDER BY 2, 1
                LIMIT 1
            ) n ON TRUE
       ) u) AS evidence
"""


class SignageEntrances(Rule):
    """Boards at entrances, and entrances without a board."""

    id = "signage-entrances"
    relative_cost = 0.9
    zh = "出入口公益广告"
    en = "Signage at entrances"
    description = (
        "出入口附近的固定展板; 无展板的小区、学校出入口 / boards near entrances; "
        "compound and school entrances without a board"
    )
    params_model = EntranceParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Distance from the profile; compound and school gates need a board."""
        return {
            "entrance_distance_m": profile.signage.entrance_distance_m,
            "entrance_owners": ["compounds", "schools"],
        }

    def _bind(self, params: EntranceParams) -> dict[str, Any]:
        return {
            "distance": params.entrance_distance_m,
            "search": NEAREST_FACTOR * params.entrance_distance_m,
            "owners": params.entrance_owners,
        }

    def evaluate(
        self, conn: Connection, scope: Scope, params: EntranceParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Boards at/away from entrances and entrances with/without boards, in scope."""
        pairs, where, bind = _pairs(conn, scope, params.entrance_distance_m)
        bind = {**bind, **self._bind(params), **page.bind()}
        board_where, _ = scope_sql(scope, "s.grid_id")
        sql = _ENTRANCES_WITH_EVIDENCE.format(pairs=pairs, where=where, board_where=board_where)
        found, evidence = figures_and_evidence(conn, sql, bind)
        groups = found["groups"] or []
        d = params.entrance_distance_m
        for f in evidence:
            p = f["properties"]
            far = NEAREST_FACTOR * d
            near = (
                f"{far:g} 米内无展板"
                if p["distance_m"] is None
                else f"最近展板 {p['nearest_board']} 距 {p['distance_m']:.2f} 米"
            )
            near_en = (
                f"none within {far:g} m"
                if p["distance_m"] is None
                else f"nearest board {p['nearest_board']} at {p['distance_m']:.2f} m"
            )
            zh, en = OWNER_LABEL[p["owner_layer"]]
            p["reason"] = (
                f"{zh}出入口 {d:g} 米内无固定展板 ({near}) / no fixed board within {d:g} m of "
                f"this {en} entrance ({near_en})"
            )
        n_boards, at = int(found["boards"]), int(found["at_entrances"])
        missing = int(found["missing"])
        by_owner = {
            g["owner_layer"]: {
                "entrances": int(g["entrances"]),
                "with_board": int(g["with_board"]),
                "required": g["owner_layer"] in params.entrance_owners,
            }
            for g in sorted(groups, key=lambda g: str(g["owner_layer"]))
        }
        required = sum(v["entrances"] for v in by_owner.values() if v["required"])
        summary = {
            "boards": n_boards,
            "boards_at_entrances": at,
            "boards_elsewhere": n_boards - at,
            "share_at_entrances": round(at / n_boards, 6) if n_boards else None,
            "entrances": sum(v["entrances"] for v in by_owner.values()),
            "entrances_with_board": sum(v["with_board"] for v in by_owner.values()),
            "required_entrances": required,
            "required_without_board": missing,
            "by_owner": by_owner,
            "entrance_distance_m": d,
        }
        return Outcome(summary, None if not required else missing == 0, evidence, missing)

    def by_unit(
        self, conn: Connection, level: Level, params: EntranceParams
    ) -> dict[str, UnitVerdict]:
        """Share of required entrances with a board, per unit that has such entrances."""
        pairs, _, _ = _pairs(conn, Scope("all"), params.entrance_distance_m)
        groups = rows(
            conn,
            _ENTRANCES.format(
                pairs=pairs,
                unit=unit_sql(level),
                join="JOIN grids g ON g.id = a.grid_id",
                where="TRUE",
            ),
            self._bind(params),
        )
        totals: dict[str, list[int]] = {}
        for g in groups:
            if g["owner_layer"] in params.entrance_owners:
                t = totals.setdefault(g["unit"], [0, 0])
                t[0] += int(g["entrances"])
                t[1] += int(g["with_board"])
        return {
            unit: UnitVerdict(round(with_board / n, 6), with_board == n)
            for unit, (n, with_board) in totals.items()
        }
