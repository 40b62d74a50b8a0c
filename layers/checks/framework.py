"""What every check shares: scopes, parameters from the profile, verdicts, evidence.

A check is set-based SQL over the whole scope (never a loop over features), so
the same rule answers one grid or the whole city, and `by_unit` answers every
grid/community/street at once for the scorecards. Assets reach their grid
through `grid_id`, kept by triggers; higher units are prefixes of grid codes
(6 district + 3 street + 3 community + 3 grid digits).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection, text

from layers.profile import RuleProfile

Level = Literal["grid", "community", "street"]
LEVELS: tuple[Level, ...] = ("grid", "community", "street")

# Digits of a grid code that identify a unit of each level.
_PREFIX = {"street": 9, "community": 12, "grid": 15}


class CheckError(ValueError):
    """A bad scope or parameter: the message names it."""


@dataclass(frozen=True)
class Scope:
    """Where a check looks: everything, or one street, community or grid."""

    level: Literal["all", "street", "community", "grid"]
    code: str | None = None

    @property
    def label(self) -> str:
        """'all' or 'grid:231005001001001'."""
        return "all" if self.code is None else f"{self.level}:{self.code}"

    @property
    def prefix(self) -> str | None:
        """The grid-code prefix of the grid cells in scope (None: all)."""
        return None if self.code is None else self.code[: _PREFIX[self.level]]


def parse_scope(value: str | None) -> Scope:
    """'all', 'grid:CODE', 'community:CODE' or 'street:CODE' (15-digit codes)."""
    if value is None or value == "all":
        return Scope("all")
    level, _, code = value.partition(":")
    if level not in _PREFIX or not re.fullmatch(r"[0-9]{15}", code):
        raise CheckError(
            f"scope {value!r} is not all, grid:CODE, community:CODE or street:CODE (15-digit codes)"
        )
    tail = code[_PREFIX[level] :]
    if set(tail) - {"0"}:
        raise CheckError(f"scope {value!r}: a {level} code ends in {len(tail)} zeros")
    return Scope(level, code)  # type: ignore[arg-type]


def unit_sql(level: Level, grid_code: str = "g.code") -> str:
    """SQL for the code of the unit (of `level`) a grid cell belongs to."""
    keep = _PREFIX[level]
    if keep == 15:
        return grid_code
    return f"(left({grid_code}, {keep}) || '{'0' * (15 - keep)}')"


def scope_sql(scope: Scope, grid_id: str = "a.grid_id") -> tuple[str, dict[str, Any]]:
    """A WHERE fragment keeping rows whose grid lies in scope, and its parameters."""
    if scope.prefix is None:
        return "TRUE", {}
    return (
        f"{grid_id} IN (SELECT id FROM grids WHERE level = 'grid' AND code LIKE :scope_prefix)",
        {"scope_prefix": scope.prefix + "%"},
    )


def rows(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Result rows as dicts."""
    return [dict(r._mapping) for r in conn.execute(text(sql), dict(params))]


def features(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """GeoJSON features from a query selecting `geometry` (GeoJSON text) and properties."""
    out = []
    for row in rows(conn, sql, params):
        geometry = row.pop("geometry")
        out.append({"type": "Feature", "geometry": _json(geometry), "properties": row})
    return out


def figures_and_evidence(
    conn: Connection, sql: str, params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one row of a query with figures and an `evidence` JSON array of rows with geometry."""
    row = rows(conn, sql, params)[0]
    found = row.pop("evidence") or []
    return row, [{"type": "Feature", "geometry": f.pop("geometry"), "properties": f} for f in found]


def group_by_unit(groups: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of a per-unit query (a `unit` column), gathered by unit."""
    by: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        by.setdefault(g["unit"], []).append(g)
    return by


def rated_units(
    groups: list[dict[str, Any]],
    judge: Callable[[list[dict[str, Any]]], tuple[dict[str, Any], bool | None]],
) -> dict[str, UnitVerdict]:
    """Per-unit verdicts of a rate rule: `judge` turns one unit's groups into its summary
    (whose `rate` is the scorecard figure) and verdict, as for the whole scope."""
    verdicts = {}
    for unit, unit_groups in group_by_unit(groups).items():
        summary, passed = judge(unit_groups)
        verdicts[unit] = UnitVerdict(summary["rate"], passed)
    return verdicts


def comma_list(value: Any) -> Any:
    """A `mode="before"` validator body: a what-if override arrives as text ('a,b'), a
    profile value as a list."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def grid_units(conn: Connection, level: Level) -> list[str]:
    """Every unit of `level` that has grid cells (units with no assets still get a verdict)."""
    sql = f"SELECT DISTINCT {unit_sql(level)} AS unit FROM grids g WHERE g.level = 'grid'"
    return [r["unit"] for r in rows(conn, sql, {})]


def _json(value: Any) -> Any:
    import orjson

    return orjson.loads(value) if isinstance(value, str) else value


DEFAULT_EVIDENCE_LIMIT = 1000
MAX_EVIDENCE_LIMIT = 10_000


@dataclass(frozen=True)
class Page:
    """Which failing items a run draws as evidence; verdicts and figures always count them all.

    A whole city can fail in 200,000 places (every building under its signage quota):
    drawing them all costs more than deciding the verdict and no map shows them, so a run
    draws one page, in the rule's order, and says how many there are; a planner pages on
    or narrows the scope. `limit` 0 gives the figures alone.
    """

    limit: int = DEFAULT_EVIDENCE_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise CheckError(
                f"evidence_limit {self.limit} and evidence_offset {self.offset} must be >= 0"
            )

    def bind(self) -> dict[str, int]:
        """The page as SQL parameters `:evidence_limit` and `:evidence_offset`."""
        return {"evidence_limit": self.limit, "evidence_offset": self.offset}

    def of(self, items: list[Any]) -> list[Any]:
        """This page of a list already in order."""
        return items[self.offset : self.offset + self.limit]

    def after(self, skipped: int) -> Page:
        """The rest of this page once `skipped` items of a longer list came before."""
        used = max(0, skipped - self.offset)
        return Page(max(0, self.limit - used), max(0, self.offset - skipped))


FIRST_PAGE = Page()
"""The default page: the first `DEFAULT_EVIDENCE_LIMIT` items."""

PAGE_SQL = "ORDER BY {order} LIMIT :evidence_limit OFFSET :evidence_offset"
"""The tail of an evidence query (format `order`), bound by `Page.bind`."""


@dataclass
class Outcome:
    """A verdict with its figures, one page of evidence (GeoJSON features saying why) and
    how many failing items there are in all (`evidence_total`; the page's length if unset).
    """

    summary: dict[str, Any]
    passed: bool | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    evidence_total: int | None = None

    def __post_init__(self) -> None:
        if self.evidence_total is None:
            self.evidence_total = len(self.evidence)


@dataclass(frozen=True)
class UnitVerdict:
    """One unit's result for the scorecards: its figure and pass/fail."""

    figure: float | None
    passed: bool | None
    note: str = ""


class Params(BaseModel):
    """Base of each rule's parameters: unknown names are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _nest(overrides: Mapping[str, str]) -> dict[str, Any]:
    """'lighting_rate.main=0.98' → {'lighting_rate': {'main': '0.98'}}."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = key.split(".")
        where = nested
        for part in parts[:-1]:
            where = where.setdefault(part, {})
            if not isinstance(where, dict):
                raise CheckError(f"parameter {key!r} mixes a value and a table")
        where[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Rule(ABC):
    """One campaign rule as a check."""

    id: ClassVar[str]
    zh: ClassVar[str]
    en: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[Params]]
    relative_cost: ClassVar[float] = 0.5
    """Whole-city seconds on the large demo (one backend), only to start heavy rules first."""

    @abstractmethod
    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """The rule's parameters as the profile sets them."""

    def parameters(self, profile: RuleProfile, overrides: Mapping[str, str] | None = None) -> Any:
        """Profile values, with per-request overrides (what-if); CheckError names bad ones."""
        data = _merge(self.defaults(profile), _nest(overrides or {}))
        try:
            return self.params_model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise CheckError(f"parameters of {self.id}: {problems}") from exc

    @abstractmethod
    def evaluate(
        self, conn: Connection, scope: Scope, params: Any, page: Page = FIRST_PAGE
    ) -> Outcome:
        """The verdict over a scope, with one page of evidence and the count of all."""

    @abstractmethod
    def by_unit(self, conn: Connection, level: Level, params: Any) -> dict[str, UnitVerdict]:
        """Every unit of a level at once (for scorecards): unit code → verdict."""
