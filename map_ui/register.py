"""A grid and what it holds: the facts behind `/map/grids/{code}` and its print sheet.

"一格一图" (seed 000, item 8(三)): every grid keeps a map and a register of everything
in it. The register lists every asset whose `grid_id` lies in the unit (the same scope
semantics as the checks, `layers.checks.framework.scope_sql`), and the open problems are
the evidence of every check run over that scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from layers.catalog import CATALOG, Catalog, LayerSpec
from layers.checks import RULES
from layers.checks.framework import MAX_EVIDENCE_LIMIT, CheckError, Page, parse_scope, scope_sql
from layers.checks.reports import run_check
from layers.profile import RuleProfile
from map_ui.styles import Lang, layer_style

REGISTER_LIMIT = 5000
"""Rows listed per sheet: a grid holds hundreds; a whole district would not print."""

_GRID_SQL = text(
    "SELECT id, code, name, level, officer, officer_phone, unit,"
    " ST_AsGeoJSON(geom, 9) AS geometry,"
    " ST_XMin(geom) AS west, ST_YMin(geom) AS south, ST_XMax(geom) AS east,"
    " ST_YMax(geom) AS north"
    " FROM grids WHERE code = :code"
)


@dataclass(frozen=True)
class GridInfo:
    """One unit of the grid hierarchy (district, street, community or grid)."""

    id: int
    code: str
    name: str
    level: str
    officer: str | None
    officer_phone: str | None
    unit: str | None
    geometry: dict[str, Any]
    bounds: tuple[float, float, float, float]

    @property
    def scope(self) -> str:
        """The checks' scope of this unit: a district is the whole jurisdiction."""
        return "all" if self.level == "district" else f"{self.level}:{self.code}"


def find_grid(conn: Connection, code: str) -> GridInfo | None:
    """The unit with this code, or None."""
    row = conn.execute(_GRID_SQL, {"code": code}).mappings().first()
    if row is None:
        return None
    return GridInfo(
        id=int(row["id"]),
        code=str(row["code"]),
        name=str(row["name"]),
        level=str(row["level"]),
        officer=row["officer"],
        officer_phone=row["officer_phone"],
        unit=row["unit"],
        geometry=orjson.loads(row["geometry"]),
        bounds=(float(row["west"]), float(row["south"]), float(row["east"]), float(row["north"])),
    )


@dataclass(frozen=True)
class RegisterRow:
    """One asset of the register: its layer, code, name and styled status."""

    layer: str
    layer_label: str
    code: str
    name: str | None
    value: str | None
    value_label: str | None
    color: str


@dataclass
class Register:
    """The assets of a unit (at most REGISTER_LIMIT rows) and how many there are in all."""

    rows: list[RegisterRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Assets in the unit, listed or not."""
        return sum(self.counts.values())

    def values(self, layer: str) -> set[str]:
        """The style values the listed assets of a layer hold (what its legend must show)."""
        return {r.value for r in self.rows if r.layer == layer and r.value is not None}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _assets_sql(spec: LayerSpec, where: str) -> str:
    """Code, name and style value of the layer's rows in scope (names from the catalog)."""
    name = "t.name" if "name" in spec.field_names() else "NULL"
    value = f"t.{_quote(spec.style_field)}" if spec.style_field else "NULL"
    return (
        f"SELECT t.code, {name} AS name, {value} AS value, count(*) OVER () AS total"
        f" FROM {_quote(spec.table)} AS t WHERE {where} ORDER BY t.code LIMIT :limit"
    )


def grid_register(
    conn: Connection, grid: GridInfo, lang: Lang, catalog: Catalog = CATALOG
) -> Register:
    """Every asset of every layer that belongs to grids (all but the grids themselves)."""
    where, params = scope_sql(parse_scope(grid.scope), "t.grid_id")
    register = Register()
    room = REGISTER_LIMIT
    for spec in catalog:
        if not spec.in_grid:
            continue
        style = layer_style(spec)
        found = conn.execute(
            text(_assets_sql(spec, where)), {**params, "limit": max(room, 1)}
        ).mappings()
        count = 0
        for row in found:
            count = int(row["total"])
            if room <= 0:
                break
            value = row["value"]
            entry = next((e for e in style.entries if e.key == value), None)
            register.rows.append(
                RegisterRow(
                    spec.id,
                    style.label(lang),
                    str(row["code"]),
                    row["name"],
                    value,
                    entry.label(lang) if entry else value,
                    style.color_of(value),
                )
            )
            room -= 1
        if count:
            register.counts[spec.id] = count
    return register


SHEET_PAGE = Page(limit=MAX_EVIDENCE_LIMIT)
"""A sheet lists every open problem of its unit up to the checks' largest page."""


@dataclass(frozen=True)
class RuleEvidence:
    """The evidence one check gives for the unit: its open problems."""

    id: str
    name: dict[str, str]
    features: list[dict[str, Any]]
    total: int | None = None
    """Failing items in all (the features are the first `MAX_EVIDENCE_LIMIT` of them)."""

    def as_config(self) -> dict[str, Any]:
        """The shape the map script draws (same as a `/checks` entry plus its features)."""
        return {"id": self.id, "name": self.name, "features": self.features}


@dataclass
class Problems:
    """Evidence of every check over a unit, and the checks that could not run."""

    rules: list[RuleEvidence] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Open problems in all (beyond those listed, when a unit has more than a page)."""
        return sum(len(r.features) if r.total is None else r.total for r in self.rules)


def problem_subject(props: dict[str, Any]) -> str:
    """The codes a piece of evidence is about: its `code`, else its `*_code` fields."""
    if props.get("code"):
        return str(props["code"])
    codes = [
        str(v)
        for k, v in props.items()
        if k.endswith("_code") and k not in ("grid_code", "road_code") and v
    ]
    return " · ".join(codes)


def open_problems(engine: Engine, profile: RuleProfile, grid: GridInfo) -> Problems:
    """Every rule over the unit; a rule that fails to run is named, not fatal to the sheet.

    Each rule gets its own connection, so an error in one cannot abort the others'
    transaction.
    """
    problems = Problems()
    for rule_id in RULES:
        try:
            with engine.connect() as conn:
                report = run_check(conn, profile, rule_id, grid.scope, page=SHEET_PAGE)
        except (CheckError, SQLAlchemyError) as exc:
            problems.not_run.append(f"{rule_id}: {exc.__class__.__name__}")
            continue
        evidence = report["evidence"]
        problems.rules.append(
            RuleEvidence(
                rule_id, dict(report["name"]), evidence["features"], evidence["numberMatched"]
            )
        )
    return problems
