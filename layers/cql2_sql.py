"""CQL2 filters (OGC API Features Part 3) translated to parameterised SQL.

The `cql2` parser (Rust) turns cql2-text and cql2-json into one JSON AST; this
module walks that AST against a whitelist derived from the layer catalog, so a
filter can only name declared columns and every value reaches PostgreSQL as a
bound parameter, never as SQL text.  Spatial literals are converted (axis
order, CRS) on the literal side so the columns' GiST indexes stay usable, and
S_DWITHIN runs on the geography column: metres on the ellipsoid, index-assisted
(a cast or transform of the column defeats the index, ../shared/TRAPS.md).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, NoReturn, cast

import cql2
import shapely
from geoalchemy2 import Geography
from shapely.geometry import mapping, shape
from shapely.validation import explain_validity
from sqlalchemy import (
    Double,
    Integer,
    Table,
    Text,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql.elements import ColumnElement

from gis_api.ogc.crs import ApiCrs
from layers.catalog import FieldKind, LayerField, LayerSpec

MAX_DEPTH = 50
"""Deepest nesting accepted (AST levels, or parentheses / prefix operators in cql2-text)."""
MAX_NODES = 1000
"""Most AST nodes accepted (a geometry literal counts as one)."""
MAX_TEXT_CHARS = 200_000
"""Longest filter text accepted (room for a detailed polygon)."""
MAX_COORDINATES = 100_000
"""Most vertices in one geometry literal."""
# Non-numeric cql2-text tokens accepted before parsing: the Rust parser
# recurses per operator and a deep or long input overflows its stack and kills
# the process (checked: 4,000 NOTs, 1,500 nested parentheses or 12,000 `+`
# segfault in cql2 0.6), so size is bounded before it ever sees the text.
_MAX_TOKENS = 3 * MAX_NODES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
GEOMETRY = "geometry"
"""The queryable naming a layer's geometry."""

_STORAGE_SRID = 4326


class FilterError(ValueError):
    """A filter that cannot be run; the message names the offending part (HTTP 400)."""


# --------------------------------------------------------------------------
# Parsing


_TOKEN = re.compile(
    r"""'(?:[^']|'')*'?          # string literal ('' escapes a quote)
      | "(?:[^"]|"")*"?          # quoted identifier
      | \d+(?:\.\d*)?(?:[eE][+-]?\d+)? | \.\d+(?:[eE][+-]?\d+)?   # number
      | [^\W\d]\w*                # identifier or keyword
      | <>|<=|>=|\S              # operator, parenthesis, comma, ...""",
    re.VERBOSE,
)
_PREFIX_TOKENS = frozenset({"NOT", "-", "+"})


def _check_text(text: str) -> None:
    """Refuse cql2-text that is too big or too deep before the parser sees it."""
    if len(text) > MAX_TEXT_CHARS:
        raise FilterError(f"the filter is longer than {MAX_TEXT_CHARS} characters")
    depth = prefix_run = tokens = 0
    for match in _TOKEN.finditer(text):
        piece = match.group()
        if piece[0].isdigit() or piece[0] in ".,":
            prefix_run = 0
            continue
        tokens += 1
        depth += {"(": 1, ")": -1}.get(piece, 0)
        prefix_run = prefix_run + 1 if piece.upper() in _PREFIX_TOKENS else 0
        if depth > MAX_DEPTH or prefix_run > MAX_DEPTH:
            raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels")
        if tokens > _MAX_TOKENS:
            raise FilterError(f"the filter has more than {MAX_NODES} nodes")


def _short_parse_error(error: Exception) -> str:
    """The parser's message without its multi-line source excerpt."""
    message = str(error)
    where = re.search(r"-->\s*(\d+):(\d+)", message)
    expected = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("= ")]
    if where and expected:
        message = f"at line {where[1]} column {where[2]}: {expected[-1]}"
    message = " ".join(message.split())
    return message if len(message) <= 300 else message[:297] + "..."


def parse_filter(text: str, lang: str | None) -> dict[str, Any]:
    """Parse a `filter` parameter written in `filter-lang` (cql2-text when None).

    A bare TRUE/FALSE is returned as a one-argument AND so the result is always
    a JSON object; the AST is size-checked so `filter_clause` can recurse safely.
    """
    language = "cql2-text" if lang is None else lang.strip().lower()
    if language not in ("cql2-text", "cql2-json"):
        raise FilterError(f"unsupported filter-lang {lang!r}; use cql2-text or cql2-json")
    if language == "cql2-text":
        _check_text(text)
    elif len(text) > MAX_TEXT_CHARS:
        raise FilterError(f"the filter is longer than {MAX_TEXT_CHARS} characters")
    try:
        expr = cql2.parse_text(text) if language == "cql2-text" else cql2.parse_json(text)
        ast: object = expr.to_json()
    except Exception as error:  # any parser failure is the client's syntax error
        raise FilterError(f"invalid {language}: {_short_parse_error(error)}") from error
    if isinstance(ast, bool):
        ast = {"op": "and", "args": [ast]}
    if not isinstance(ast, dict):
        raise FilterError(f"the filter {_show(ast)} is not a condition")
    _check_size(ast)
    return ast


def _check_size(ast: object) -> None:
    """Refuse ASTs deeper than MAX_DEPTH or bigger than MAX_NODES (iteratively)."""
    stack: list[tuple[object, int]] = [(ast, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested deeper than {MAX_DEPTH} levels")
        if nodes > MAX_NODES:
            raise FilterError(f"the filter has more than {MAX_NODES} nodes")
        if isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, dict) and isinstance(node.get("args"), list):
            stack.extend((child, depth + 1) for child in node["args"])


def _show(node: object) -> str:
    """A short rendering of a piece of AST for messages."""
    if isinstance(node, str):
        text = repr(node)
    else:
        try:
            text = json.dumps(node, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(node)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------
# Queryables


@dataclass(frozen=True)
class _Queryable:
    """A property a filter may name, and the column behind it."""

    name: str
    column: str
    kind: FieldKind | None  # None: the geometry
    zh: str
    en: str
    field: LayerField | None = None

    @property
    def choices(self) -> tuple[str, ...]:
        return self.field.choice_keys() if self.field is not None else ()


_TEXTUAL = frozenset({FieldKind.TEXT, FieldKind.CHOICE})
_NUMERIC = frozenset({FieldKind.INTEGER, FieldKind.FLOAT})
_TEMPORAL = frozenset({FieldKind.DATE, FieldKind.DATETIME})


@cache
def _queryables(spec: LayerSpec) -> dict[str, _Queryable]:
    """The whitelist: name -> column, for one layer."""
    found = [
        _Queryable("id", "id", FieldKind.INTEGER, "标识", "feature id"),
        _Queryable("code", "code", FieldKind.TEXT, "编码", "code"),
        *(_Queryable(f.name, f.name, f.kind, f.zh, f.en, f) for f in spec.fields),
        _Queryable("created_at", "created_at", FieldKind.DATETIME, "创建时间", "created at"),
        _Queryable("updated_at", "updated_at", FieldKind.DATETIME, "更新时间", "updated at"),
    ]
    if spec.geodesic_area:
        found.append(
            _Queryable("area_m2", "area_m2", FieldKind.FLOAT, "面积(平方米)", "geodesic area (m²)")
        )
    found.append(_Queryable(GEOMETRY, "geom", None, "几何", "geometry"))
    return {q.name: q for q in found}


_JSON_TYPES = {
    FieldKind.TEXT: "string",
    FieldKind.CHOICE: "string",
    FieldKind.INTEGER: "integer",
    FieldKind.FLOAT: "number",
    FieldKind.BOOLEAN: "boolean",
    FieldKind.DATE: "string",
    FieldKind.DATETIME: "string",
}


def _property_schema(spec: LayerSpec, q: _Queryable) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": q.zh, "description": q.en}
    if q.kind is None:
        schema["format"] = f"geometry-{spec.geometry.value.lower()}"
        schema["x-ogc-role"] = "primary-geometry"
        return schema
    schema["type"] = _JSON_TYPES[q.kind]
    if q.kind is FieldKind.DATE:
        schema["format"] = "date"
    elif q.kind is FieldKind.DATETIME:
        schema["format"] = "date-time"
    if q.field is not None:
        if q.field.choices:
            schema["enum"] = list(q.field.choice_keys())
        if q.field.pattern:
            schema["pattern"] = q.field.pattern
        if q.field.minimum is not None:
            schema["minimum"] = q.field.minimum
        if q.field.maximum is not None:
            schema["maximum"] = q.field.maximum
    return schema


def queryables(spec: LayerSpec, schema_id: str | None = None) -> dict[str, Any]:
    """The `/queryables` JSON Schema of a layer (OGC API Features Part 3).

    `schema_id` (the URL of the response) becomes "$id"; the caller knows it.
    """
    schema: dict[str, Any] = {"$schema": SCHEMA_DIALECT}
    if schema_id is not None:
        schema["$id"] = schema_id
    schema.update(
        {
            "type": "object",
            "title": spec.zh,
            "description": f"{spec.en}: properties usable in CQL2 filters",
            "properties": {
                name: _property_schema(spec, q) for name, q in _queryables(spec).items()
            },
            "additionalProperties": False,
        }
    )
    return schema


# --------------------------------------------------------------------------
# Translation


@dataclass(frozen=True)
class _Col:
    """A queryable column operand (possibly wrapped in CASEI)."""

    q: _Queryable
    expr: ColumnElement[Any]
    casei: bool = False


@dataclass(frozen=True)
class _Lit:
    """A literal operand (possibly wrapped in CASEI)."""

    value: object
    casei: bool = False


_Operand = _Col | _Lit
_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_MIRROR = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "div"})
_SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_crosses": "ST_Crosses",
    "s_overlaps": "ST_Overlaps",
}
_SPATIAL_CONVERSE = {"s_within": "s_contains", "s_contains": "s_within"}
_TEMPORAL_OPS = frozenset(
    {"t_after", "t_before", "t_equals", "t_disjoint", "t_intersects", "t_during"}
)
_TEMPORAL_CONVERSE = {"t_after": "t_before", "t_before": "t_after"}
_METRES = frozenset({"m", "meter", "meters", "metre", "metres"})


def _bool(expr: ColumnElement[Any]) -> ColumnElement[bool]:
    """Type a SQL function known to return boolean (ST_* predicates)."""
    return cast("ColumnElement[bool]", expr)


class _Translator:
    """Walks one AST for one layer table; every method raises FilterError on misuse."""

    def __init__(self, spec: LayerSpec, table: Table, crs: ApiCrs) -> None:
        self.spec = spec
        self.table = table
        self.crs = crs
        self.queryables = _queryables(spec)

    # ---- predicates

    def predicate(self, node: object) -> ColumnElement[bool]:
        """A boolean SQL expression for a node in condition position."""
        if isinstance(node, bool):
            return true() if node else false()
        if not isinstance(node, dict):
            raise FilterError(f"{_show(node)} is not a condition")
        if "property" in node:
            col = self.column(node)
            if col.q.kind is not FieldKind.BOOLEAN:
                raise FilterError(f"property {col.q.name!r} is not a boolean condition")
            return cast("ColumnElement[bool]", col.expr)
        op, args = self.op_args(node)
        if op in ("and", "or"):
            if not args:
                raise FilterError(f"{op.upper()} needs arguments")
            parts = [self.predicate(a) for a in args]
            return and_(*parts) if op == "and" else or_(*parts)
        if op == "not":
            self.arity(op, args, 1)
            return not_(self.predicate(args[0]))
        if op in _COMPARISONS:
            return self.compare(op, args)
        if op == "like":
            return self.like(args)
        if op == "in":
            return self.in_(args)
        if op == "between":
            return self.between(args)
        if op == "isnull":
            self.arity("IS NULL", args, 1)
            operand = self.operand(args[0], allow_geometry=True)
            if not isinstance(operand, _Col):
                raise FilterError("IS NULL applies to a property")
            return operand.expr.is_(None)
        if op in _SPATIAL or op in ("s_disjoint", "s_dwithin"):
            return self.spatial(op, args)
        if op.startswith("t_"):
            return self.temporal(op, args)
        self.refuse_op(op)

    def op_args(self, node: dict[str, Any]) -> tuple[str, list[Any]]:
        op = node.get("op")
        if not isinstance(op, str):
            raise FilterError(f"{_show(node)} is not a CQL2 expression")
        args = node.get("args", [])
        if not isinstance(args, list):
            raise FilterError(f"arguments of {op!r} must be a list")
        return op.lower(), args

    @staticmethod
    def arity(op: str, args: list[Any], *counts: int) -> None:
        if len(args) not in counts:
            expected = " or ".join(str(c) for c in counts)
            raise FilterError(f"{op.upper()} takes {expected} arguments, not {len(args)}")

    @staticmethod
    def refuse_op(op: str) -> NoReturn:
        name = op.upper()
        if op in _ARITHMETIC:
            raise FilterError(f"arithmetic operator {op!r} is not supported")
        if op.startswith("a_"):
            raise FilterError(f"array operator {name} is not supported (no array properties)")
        if op == "accenti":
            raise FilterError("ACCENTI is not supported (no accent folding for these layers)")
        if op.startswith("t_"):
            raise FilterError(
                f"temporal operator {name} is not supported: time properties are instants; "
                "use T_AFTER, T_BEFORE, T_EQUALS, T_DISJOINT, T_INTERSECTS or T_DURING"
            )
        if op in ("casei", "s_dwithin") or op in _SPATIAL or op in _COMPARISONS:
            raise FilterError(f"{name} cannot be used here")
        raise FilterError(f"unknown function or operator {op!r}")

    # ---- operands

    def column(self, node: dict[str, Any], allow_geometry: bool = False) -> _Col:
        name = node.get("property")
        q = self.queryables.get(name) if isinstance(name, str) else None
        if q is None:
            raise FilterError(
                f"unknown property {_show(name)} for {self.spec.id}; "
                f"queryables: {', '.join(self.queryables)}"
            )
        if q.kind is None and not allow_geometry:
            raise FilterError(f"{q.name!r} can only be used in spatial (S_*) functions")
        return _Col(q, self.table.c[q.column])

    def operand(self, node: object, allow_geometry: bool = False) -> _Operand:
        if node is None:
            raise FilterError("NULL is not a value here; use IS NULL")
        if isinstance(node, list):
            raise FilterError(f"a list {_show(node)} is only allowed after IN")
        if not isinstance(node, dict):
            return _Lit(node)
        if "property" in node:
            return self.column(node, allow_geometry)
        if "date" in node or "timestamp" in node:
            return _Lit(node)
        if "interval" in node:
            raise FilterError("INTERVAL is only allowed in T_* functions")
        if "bbox" in node or "type" in node:
            raise FilterError("a geometry is only allowed in S_* functions")
        op, args = self.op_args(node)
        if op != "casei":
            self.refuse_op(op)
        self.arity("CASEI", args, 1)
        inner = self.operand(args[0])
        if isinstance(inner, _Col):
            if inner.q.kind not in _TEXTUAL:
                raise FilterError(f"CASEI needs a text property; {inner.q.name!r} is not text")
            return _Col(inner.q, inner.expr, casei=True)
        if not isinstance(inner.value, str):
            raise FilterError(f"CASEI needs a string, not {_show(inner.value)}")
        return _Lit(inner.value, casei=True)

    def two_sides(self, op: str, args: list[Any]) -> tuple[str, _Col, _Operand]:
        """Both operands with the property first (mirroring the operator if needed)."""
        self.arity(op, args, 2)
        left, right = self.operand(args[0]), self.operand(args[1])
        if isinstance(left, _Lit):
            if isinstance(right, _Lit):
                raise FilterError(f"{op.upper()} compares two values: name a property")
            left, right, op = right, left, _MIRROR.get(op, op)
        return op, left, right

    def value(self, lit: _Lit, q: _Queryable) -> Any:
        """The literal as the Python value of the column's type (parser numbers are floats)."""
        v = lit.value
        kind = q.kind
        where = f"property {q.name!r} ({kind})"
        if isinstance(v, dict):
            if kind is FieldKind.DATE and "date" in v:
                return _parse_date(v["date"])
            if kind is FieldKind.DATETIME and "timestamp" in v:
                return _parse_timestamp(v["timestamp"])
            hint = "DATE('YYYY-MM-DD')" if kind is FieldKind.DATE else "TIMESTAMP('…Z')"
            tip = f"; use {hint}" if kind in _TEMPORAL else ""
            raise FilterError(f"{_show(v)} cannot be compared with {where}{tip}")
        if kind in _TEXTUAL:
            if isinstance(v, bool):
                raise FilterError(f"{where} is text, not boolean")
            if isinstance(v, int | float):
                return _number_text(v)
            if isinstance(v, str):
                return v
        elif kind in _NUMERIC:
            number = _number(v, where)
            if kind is FieldKind.INTEGER and number.is_integer():
                return int(number)
            return number
        elif kind is FieldKind.BOOLEAN:
            if isinstance(v, bool):
                return v
        elif kind is FieldKind.DATE and isinstance(v, str):
            return _parse_date(v)
        elif kind is FieldKind.DATETIME and isinstance(v, str):
            return _parse_timestamp(v)
        raise FilterError(f"{_show(v)} cannot be compared with {where}")

    def bound(self, lit: _Lit, col: _Col) -> ColumnElement[Any]:
        """A bound parameter of the column's type holding the coerced literal."""
        v = self.value(lit, col.q)
        type_ = Double() if isinstance(v, float) and col.q.kind in _NUMERIC else col.expr.type
        return literal(v, type_)

    def check_choice(self, col: _Col, lit: _Lit) -> None:
        """Equality with a choice field must use one of its keys (a typo gives an error)."""
        keys = col.q.choices
        if keys and not (col.casei or lit.casei):
            v = self.value(lit, col.q)
            if v not in keys:
                raise FilterError(
                    f"property {col.q.name!r} has no value {_show(v)}; values: {', '.join(keys)}"
                )

    # ---- comparison predicates

    def compare(self, op: str, args: list[Any]) -> ColumnElement[bool]:
        """=, <>, <, <=, >, >=; CASEI on either side lowers both (the evident intent)."""
        op, left, right = self.two_sides(op, args)
        casei = left.casei or right.casei
        if isinstance(right, _Col):
            if _family(left.q) != _family(right.q):
                raise FilterError(
                    f"properties {left.q.name!r} and {right.q.name!r} have different types"
                )
            rhs: ColumnElement[Any] = right.expr
        else:
            if op in ("=", "<>"):
                self.check_choice(left, right)
            rhs = self.bound(right, left)
        lhs: ColumnElement[Any] = left.expr
        if casei:
            lhs, rhs = func.lower(lhs), func.lower(rhs)
        return _COMPARISONS[op](lhs, rhs)

    def like(self, args: list[Any]) -> ColumnElement[bool]:
        """LIKE on text properties only (a pattern on a number or date is a client error)."""
        _, left, right = self.two_sides("like", args)
        if left.q.kind not in _TEXTUAL:
            raise FilterError(f"LIKE needs a text property; {left.q.name!r} is {left.q.kind}")
        if not isinstance(right, _Lit) or not isinstance(right.value, str):
            raise FilterError("the LIKE pattern must be a string")
        # CQL2 and PostgreSQL share the wildcards (% _) and the escape (\).
        pattern: ColumnElement[Any] = literal(right.value, Text())
        lhs: ColumnElement[Any] = left.expr
        if left.casei or right.casei:
            lhs, pattern = func.lower(lhs), func.lower(pattern)
        return lhs.like(pattern)

    def in_(self, args: list[Any]) -> ColumnElement[bool]:
        """IN with a list of values, each coerced like an equality operand."""
        self.arity("in", args, 2)
        left = self.operand(args[0])
        if not isinstance(left, _Col):
            raise FilterError("IN needs a property on its left")
        if not isinstance(args[1], list) or not args[1]:
            raise FilterError("IN needs a non-empty list of values")
        items = [self.operand(item) for item in args[1]]
        values: list[ColumnElement[Any]] = []
        casei = left.casei or any(i.casei for i in items)
        for item in items:
            if not isinstance(item, _Lit):
                raise FilterError("IN lists hold values, not properties")
            self.check_choice(left, item)
            bound = self.bound(item, left)
            values.append(func.lower(bound) if casei else bound)
        lhs: ColumnElement[Any] = func.lower(left.expr) if casei else left.expr
        return lhs.in_(values)

    def between(self, args: list[Any]) -> ColumnElement[bool]:
        self.arity("between", args, 3)
        left = self.operand(args[0])
        if not isinstance(left, _Col) or left.casei:
            raise FilterError("BETWEEN needs a property on its left")
        if left.q.kind is FieldKind.BOOLEAN:
            raise FilterError(f"BETWEEN does not apply to boolean {left.q.name!r}")
        low, high = self.operand(args[1]), self.operand(args[2])
        if not isinstance(low, _Lit) or not isinstance(high, _Lit):
            raise FilterError("BETWEEN bounds must be values")
        return left.expr.between(self.bound(low, left), self.bound(high, left))

    # ---- spatial predicates

    def spatial(self, op: str, args: list[Any]) -> ColumnElement[bool]:
        """S_* on the indexed `geom` column; S_DWITHIN in metres on the indexed `geog`."""
        if op == "s_dwithin":
            self.arity(op, args, 3, 4)
            rest = args[2:]
        else:
            self.arity(op, args, 2)
            rest = []
        first, second = args[0], args[1]
        if not _is_property(first) and _is_property(second):
            first, second = second, first
            op = _SPATIAL_CONVERSE.get(op, op)
        if not _is_property(first):
            raise FilterError(f"{op.upper()} needs the property {GEOMETRY!r}")
        col = self.column(first, allow_geometry=True)
        if col.q.kind is not None:
            raise FilterError(f"{op.upper()} needs the property {GEOMETRY!r}, not {col.q.name!r}")
        geometry = self.geometry_literal(second)
        if op == "s_dwithin":
            metres = _distance_metres(rest)
            target = sql_cast(geometry, Geography(srid=_STORAGE_SRID))
            # The bare generated column: ST_DWithin's index support then uses ix_<t>_geog.
            return _bool(func.ST_DWithin(self.table.c.geog, target, literal(metres, Double())))
        if op == "s_disjoint":
            return not_(_bool(func.ST_Intersects(col.expr, geometry)))
        return _bool(getattr(func, _SPATIAL[op])(col.expr, geometry))

    def geometry_literal(self, node: object) -> ColumnElement[Any]:
        """The literal as an EPSG:4326 lon/lat geometry, converted on the literal side."""
        if not isinstance(node, dict):
            raise FilterError(f"{_show(node)} is not a geometry")
        if "bbox" in node:
            geom = self.bbox(node["bbox"])
        elif "type" in node:
            geom = func.ST_GeomFromGeoJSON(literal(_geojson(node), Text()))
        elif "op" in node:
            op, _ = self.op_args(node)
            if op == "envelope":
                raise FilterError("ENVELOPE is not supported; use BBOX(minx, miny, maxx, maxy)")
            raise FilterError(f"{op!r} is not a geometry")
        else:
            raise FilterError(f"{_show(node)} is not a geometry")
        if self.crs.swap_axes:
            geom = func.ST_FlipCoordinates(geom)
        geom = func.ST_SetSRID(geom, literal(self.crs.srid, Integer()))
        if self.crs.srid != _STORAGE_SRID:
            geom = func.ST_Transform(geom, literal(_STORAGE_SRID, Integer()))
        return geom

    @staticmethod
    def bbox(values: object) -> ColumnElement[Any]:
        if not isinstance(values, list) or len(values) not in (4, 6):
            raise FilterError(f"BBOX needs 4 or 6 numbers, not {_show(values)}")
        numbers = [_number(v, "BBOX") for v in values]
        half = len(numbers) // 2
        x1, y1, x2, y2 = numbers[0], numbers[1], numbers[half], numbers[half + 1]
        if x1 > x2 or y1 > y2:
            raise FilterError(f"BBOX {_show(values)} has a minimum above its maximum")
        return func.ST_MakeEnvelope(*(literal(n, Double()) for n in (x1, y1, x2, y2)))

    # ---- temporal predicates

    def temporal(self, op: str, args: list[Any]) -> ColumnElement[bool]:
        """T_* for instant properties against an instant or interval ('..' is open)."""
        if op not in _TEMPORAL_OPS:
            self.refuse_op(op)
        self.arity(op, args, 2)
        first, second = args
        if not _is_property(first) and _is_property(second):
            first, second = second, first
            op = _TEMPORAL_CONVERSE.get(op, op)
        col = self.operand(first)
        if not isinstance(col, _Col) or col.q.kind not in _TEMPORAL:
            raise FilterError(f"{op.upper()} needs a date or timestamp property first")
        if isinstance(second, dict) and "interval" in second:
            ends = second["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise FilterError(f"INTERVAL needs two ends, not {_show(ends)}")
            start, end = (self.instant(e, col) for e in ends)
            instant = False
        else:
            start = end = self.instant(second, col)
            instant = True
            if start is None:
                raise FilterError(f"{op.upper()} needs an instant or an interval")
        c = col.expr
        never = false()
        if op == "t_after":
            return never if end is None else c > end
        if op == "t_before":
            return never if start is None else c < start
        if op == "t_equals":
            return never if start is None or end is None else and_(c == start, c == end)
        if op == "t_during" and instant:
            return never
        strict = op == "t_during"
        parts: list[ColumnElement[bool]] = [c.is_not(None)]
        if start is not None:
            parts.append(c > start if strict else c >= start)
        if end is not None:
            parts.append(c < end if strict else c <= end)
        inside = and_(*parts)
        if op == "t_disjoint":
            return and_(c.is_not(None), not_(inside))
        return inside

    def instant(self, node: object, col: _Col) -> ColumnElement[Any] | None:
        """One end of an interval (None when open, '..') as a bound parameter."""
        if node == "..":
            return None
        operand = self.operand(node)
        if not isinstance(operand, _Lit) or operand.casei:
            raise FilterError(f"{_show(node)} is not a date or timestamp")
        return self.bound(operand, col)


def filter_clause(
    ast: dict[str, Any], spec: LayerSpec, table: Table, filter_crs: ApiCrs
) -> ColumnElement[bool]:
    """The WHERE condition for a parsed CQL2 filter on one layer table.

    Only queryables of `spec` may be named, every literal is a bound parameter,
    and geometry literals are read in `filter_crs` (axis order and SRID).
    """
    _check_size(ast)
    return _Translator(spec, table, filter_crs).predicate(ast)


# --------------------------------------------------------------------------
# Literal helpers


def _family(q: _Queryable) -> str:
    """Comparable-type family of a queryable (text, number, date, ...)."""
    if q.kind in _TEXTUAL:
        return "text"
    if q.kind in _NUMERIC:
        return "number"
    return str(q.kind)


def _is_property(node: object) -> bool:
    return isinstance(node, dict) and "property" in node


def _number(v: object, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise FilterError(f"{_show(v)} is not a number ({where})")
    try:
        number = float(v)
    except ValueError:
        raise FilterError(f"{_show(v)} is not a number ({where})") from None
    if not math.isfinite(number):
        raise FilterError(f"{_show(v)} is not a finite number ({where})")
    return number


def _number_text(v: float) -> str:
    """A number as text columns hold it: 1.0 -> '1' (the parser makes every number a float)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return str(v)


def _parse_date(v: object) -> date:
    try:
        if isinstance(v, str) and len(v) == 10:
            return date.fromisoformat(v)
    except ValueError:
        pass
    raise FilterError(f"{_show(v)} is not a date (YYYY-MM-DD)")


def _parse_timestamp(v: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(v) if isinstance(v, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise FilterError(f"{_show(v)} is not a timestamp with a time zone (RFC 3339, e.g. …Z)")
    return parsed


def _distance_metres(rest: list[Any]) -> float:
    """S_DWITHIN's distance; only metres are accepted (the geography unit)."""
    metres = _number(rest[0], "S_DWITHIN distance")
    if isinstance(rest[0], str) or metres < 0:
        raise FilterError(f"S_DWITHIN distance {_show(rest[0])} must be a number >= 0")
    if len(rest) == 2:
        unit = rest[1].get("property") if isinstance(rest[1], dict) else rest[1]
        if not isinstance(unit, str) or unit.lower() not in _METRES:
            raise FilterError(f"S_DWITHIN unit {_show(unit)} is not supported; use meters")
    return metres


def _geojson(node: dict[str, Any]) -> str:
    """Validated 2D GeoJSON text of a literal geometry."""
    try:
        geom = shape(node)
    except Exception as error:  # shapely raises several types for malformed GeoJSON
        raise FilterError(f"invalid geometry {_show(node)}: {error}") from error
    if geom.is_empty:
        raise FilterError(f"empty geometry {_show(node)}")
    if shapely.get_num_coordinates(geom) > MAX_COORDINATES:
        raise FilterError(f"a geometry has more than {MAX_COORDINATES} coordinates")
    if not geom.is_valid:
        raise FilterError(f"invalid geometry {_show(node)}: {explain_validity(geom)}")
    return json.dumps(mapping(shapely.force_2d(geom)))
