"""One feature's edit, checked by the rules an import applies (fields, geometry, references).

The field rules are the catalog's, through `data.attributes.parse_field`, and
the geometry rules `data.geometries.check_geometries`: an edit can store
nothing an import would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from shapely.errors import ShapelyError
from sqlalchemy import Connection

from data.attributes import parse_field
from data.crs import parse_crs
from data.geometries import check_geometries
from data.importer import PreparedRows, check_references
from data.problems import Problem, ProblemList
from layers import grid_codes
from layers.catalog import GRIDS, FieldKind, LayerSpec

READ_ONLY = frozenset({"id", "version", "created_at", "updated_at", "area_m2", "grid_id"})
"""Published but kept by the database: ignored in an edit, so GET-change-PATCH works."""


class InvalidEdit(ValueError):
    """An edit refused by the layer's rules; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(_describe(p) for p in problems))


def _describe(problem: Problem) -> str:
    where = f"{_safe(problem.field)}: " if problem.field else ""
    shown = f" (value {_safe(problem.value)!r})" if problem.value is not None else ""
    return f"{where}{problem.reason}{shown}"


def _safe(text: str | None) -> str:
    """Text fit to echo in a UTF-8 answer (lone surrogates escaped)."""
    return "" if text is None else text if _storable(text) else ascii(text)


@dataclass(frozen=True)
class FeatureChange:
    """Checked new values of some declared fields and/or a WGS-84 storage geometry."""

    values: dict[str, Any]
    geometry: shapely.Geometry | None = None

    @property
    def wkb(self) -> bytes | None:
        """The new geometry as plain WKB, if any."""
        if self.geometry is None:
            return None
        data: bytes = shapely.to_wkb(self.geometry, include_srid=False)
        return data


def _storable(text: str) -> bool:
    """PostgreSQL text holds no NUL and only valid UTF-8 (JSON may carry lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_value(layer: LayerSpec, name: str, raw: object, problems: ProblemList) -> Any:
    field = layer.field(name)
    if raw is None and field.required:
        problems.add("required: it cannot be cleared", field=name)
    elif isinstance(raw, dict | list):
        problems.add("must be a single value, not an object or a list", field=name)
    elif isinstance(raw, bool) and field.kind is not FieldKind.BOOLEAN:
        problems.add(f"must be a {field.kind.value}, not true/false", field=name, value=raw)
    elif isinstance(raw, str) and not _storable(raw):
        problems.add("contains characters that cannot be stored (NUL, broken Unicode)", field=name)
    else:
        before = len(problems.problems)
        value = parse_field(field, [raw], problems)[0]
        for i in range(before, len(problems.problems)):  # parse_field numbers rows; an edit has one
            p = problems.problems[i]
            problems.problems[i] = Problem(p.reason, None, p.field, p.value)
        return value
    return None


def _parse_geometry(
    layer: LayerSpec, geometry: Mapping[str, Any], problems: ProblemList
) -> shapely.Geometry | None:
    try:
        shape = shapely.geometry.shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ShapelyError):
        problems.add("not a GeoJSON geometry", field="geometry")
        return None
    before = len(problems.problems)
    checked = check_geometries(
        np.array([shape], dtype=object), layer.geometry, parse_crs("EPSG:4326"), problems
    )
    if len(problems.problems) > before:
        for i in range(before, len(problems.problems)):
            p = problems.problems[i]
            problems.problems[i] = Problem(p.reason, None, "geometry", p.value)
        return None
    geom: shapely.Geometry = checked.geoms[0]
    return geom


def parse_change(
    layer: LayerSpec,
    properties: Mapping[str, Any] | None,
    geometry: Mapping[str, Any] | None,
    code: str,
) -> FeatureChange:
    """Check an edit's properties and GeoJSON geometry (lon/lat); InvalidEdit lists every problem.

    `code` is the feature's: the code is the key imports and references use,
    so an edit may repeat it but not change it.
    """
    problems = ProblemList("edit")
    editable = layer.field_names()
    values: dict[str, Any] = {}
    for name, raw in (properties or {}).items():
        if name in READ_ONLY:
            continue
        if name == "code":
            if raw != code:
                problems.add("the code cannot be changed by an edit", field="code", value=raw)
        elif name not in editable:
            problems.add(f"unknown property; editable: {', '.join(editable)}", field=name)
        else:
            values[name] = _parse_value(layer, name, raw, problems)
    geom = None if geometry is None else _parse_geometry(layer, geometry, problems)
    if problems:
        raise InvalidEdit(problems.problems)
    return FeatureChange(values, geom)


def check_edit_against_database(
    conn: Connection, layer: LayerSpec, code: str, current: Mapping[str, Any], change: FeatureChange
) -> None:
    """References to other rows, and the grid hierarchy, of the edited feature as it would be."""
    merged = {**current, **change.values}
    changed = set(change.values)
    problems = ProblemList("edit")
    if layer is GRIDS and changed & {"level", "parent_code"}:
        reason = grid_codes.problem_with(code, merged["level"], merged["parent_code"])
        if reason:
            problems.add(reason, field="level")
    touched = {
        f.name
        for f in layer.fields
        if f.name in changed and (f.references is not None or f.name == "owner_code")
    }
    if "owner_layer" in changed and "owner_code" in merged:
        touched.add("owner_code")
    if touched:
        rows = PreparedRows(
            layer=layer,
            source="edit",
            crs="EPSG:4326",
            codes=[code],
            values={
                name: [merged[name] if name in touched or name == "owner_layer" else None]
                for name in layer.field_names()
            },
            properties=[{}],
            geoms=np.empty(1, dtype=object),
            generated_codes=False,
            repaired=(),
        )
        check_references(conn, rows, problems)
    if problems:
        raise InvalidEdit([Problem(p.reason, None, p.field, p.value) for p in problems.problems])
