"""Attribute columns of an imported file, checked against a layer declaration.

Columns are matched by field name, English or Chinese label, or the
10-character name a shapefile truncates to; choice values by key or label.
Columns the layer does not declare go into the row's free `properties`.
Derived columns a system writes on export (id, grid, timestamps, area) are
ignored, so an export re-imports as it was.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from data.problems import ProblemList
from layers.catalog import FieldKind, LayerField, LayerSpec

CHINA_TIME = ZoneInfo("Asia/Shanghai")

CODE_NAMES = ("code", "编码", "编号")
DERIVED = frozenset(
    {
        "id",
        "fid",
        "grid_id",
        "grid_code",
        "created_at",
        "updated_at",
        "version",
        "area_m2",
        "geog",
        "所在网格",
    }
)
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "是", "真", "有"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "否", "假", "无"})


def _key(name: str) -> str:
    return name.strip().lower()


def column_map(layer: LayerSpec, columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """Map file columns to field names ('code' included); return the extra columns."""
    names: dict[str, str] = {_key(n): "code" for n in CODE_NAMES}
    for f in layer.fields:
        for alias in (f.name, f.en, f.zh, f.name[:10]):
            names.setdefault(_key(alias), f.name)
    mapping: dict[str, str] = {}
    extra: list[str] = []
    for column in columns:
        target = names.get(_key(column))
        if target is not None and target not in mapping.values():
            mapping[column] = target
        elif _key(column) not in DERIVED:
            extra.append(column)
    return mapping, extra


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip() == ""


def _as_int(value: object) -> int:
    number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


def _as_float(value: object) -> float:
    number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value in (0, 1):
            return bool(value)
        raise ValueError("not a yes/no value")
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("not a yes/no value (true/false, 是/否, 1/0)")


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    return date.fromisoformat(_iso(value)[:10])


def _iso(value: object) -> str:
    """ISO 8601 text from the spellings files use: '2026/11/20' (Excel, shapefile), 'Z'."""
    text = str(value).strip()
    return text[:10].replace("/", "-") + text[10:].replace("Z", "+00:00")


def _as_datetime(value: object) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(_iso(value))
    if moment.tzinfo is None:
        # Field devices and spreadsheets in China log Beijing time without an offset.
        moment = moment.replace(tzinfo=CHINA_TIME)
    return moment.astimezone(UTC)


def _choice_parser(field: LayerField) -> Callable[[object], str]:
    lookup: dict[str, str] = {}
    for choice in field.choices:
        for alias in (choice.key, choice.en, choice.zh):
            lookup[_key(alias)] = choice.key
    allowed = ", ".join(f"{c.key} ({c.zh})" for c in field.choices)

    def parse(value: object) -> str:
        found = lookup.get(_key(str(value)))
        if found is None:
            raise ValueError(f"unknown value; allowed: {allowed}")
        return found

    return parse


def _text_parser(field: LayerField) -> Callable[[object], str]:
    pattern = re.compile(field.pattern) if field.pattern else None

    def parse(value: object) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # codes read as numbers by spreadsheets
        text = str(value).strip()
        if pattern is not None and not pattern.fullmatch(text):
            raise ValueError(f"does not match the required form {field.pattern}")
        return text

    return parse


PARSERS: dict[FieldKind, Callable[[LayerField], Callable[[object], Any]]] = {
    FieldKind.TEXT: _text_parser,
    FieldKind.CHOICE: _choice_parser,
    FieldKind.INTEGER: lambda f: _as_int,
    FieldKind.FLOAT: lambda f: _as_float,
    FieldKind.BOOLEAN: lambda f: _as_bool,
    FieldKind.DATE: lambda f: _as_date,
    FieldKind.DATETIME: lambda f: _as_datetime,
}


def parse_field(field: LayerField, values: list[object], problems: ProblemList) -> list[Any]:
    """Parsed values of one field (its catalog default, else None, where empty)."""
    parse = PARSERS[field.kind](field)
    out: list[Any] = []
    for i, raw in enumerate(values):
        if _missing(raw):
            if field.required and field.default is None:
                problems.add("required value missing", row=i + 1, field=field.name)
            out.append(field.default)
            continue
        try:
            value = parse(raw)
        except (ValueError, TypeError) as exc:
            problems.add(str(exc) or "unreadable value", row=i + 1, field=field.name, value=raw)
            out.append(None)
            continue
        if field.minimum is not None and value < field.minimum:
            problems.add(f"below the minimum {field.minimum}", i + 1, field.name, raw)
        if field.maximum is not None and value > field.maximum:
            problems.add(f"above the maximum {field.maximum}", i + 1, field.name, raw)
        out.append(value)
    return out


def _jsonable(value: object) -> object:
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def parse_properties(frame: pd.DataFrame, extra: list[str]) -> list[dict[str, object]]:
    """Free properties per row: undeclared columns, and an exported `properties` column."""
    rows: list[dict[str, object]] = [{} for _ in range(len(frame))]
    for column in extra:
        for i, raw in enumerate(frame[column].tolist()):
            if _missing(raw):
                continue
            if column == "properties":
                loaded = json.loads(raw) if isinstance(raw, str) else raw
                if isinstance(loaded, dict):
                    rows[i].update(loaded)
                continue
            rows[i][column] = _jsonable(raw)
    return rows
