"""Importing a file into a layer: read, check everything, then write once.

All checks run before the first write, and the write is one transaction
(COPY into a staging table, then one INSERT ... ON CONFLICT), so a refused
file leaves the database exactly as it was.  The demo city is loaded through
this same path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from data.attributes import column_map, parse_field, parse_properties
from data.crs import UnknownCrs, parse_crs
from data.geometries import check_geometries
from data.problems import ImportReport, Problem, ProblemList
from data.sources import SourceTable, read_source
from layers import grid_codes
from layers.catalog import GRIDS, LayerSpec
from layers.tables import SRID

Mode = Literal["insert", "upsert"]
Progress = Callable[[int, int], None]
COPY_CHUNK = 10_000


@dataclass
class PreparedRows:
    """Checked, converted rows ready to write."""

    layer: LayerSpec
    source: str
    crs: str
    codes: list[str]
    values: dict[str, list[Any]]
    properties: list[dict[str, object]]
    geoms: np.ndarray
    generated_codes: bool
    repaired: tuple[Problem, ...]

    def __len__(self) -> int:
        return len(self.codes)


def import_file(
    engine: Engine,
    path: Path,
    layer: LayerSpec,
    crs: str | None = None,
    mode: Mode = "insert",
    progress: Progress | None = None,
) -> ImportReport:
    """Import `path` into `layer`; raises InvalidImport and writes nothing on any problem."""
    table = read_source(path, layer.id)
    rows = prepare_rows(table, layer, crs, str(path))
    with engine.begin() as conn:
        return write_rows(conn, rows, mode, progress)


def prepare_rows(
    table: SourceTable, layer: LayerSpec, crs: str | None, source: str
) -> PreparedRows:
    """Check a file's records against the layer without touching the database."""
    problems = ProblemList(source)
    declared = crs or table.file_crs or "EPSG:4326"
    try:
        source_crs = parse_crs(declared)
    except UnknownCrs as exc:
        problems.add(str(exc))
        problems.raise_if_any()
        raise
    frame = table.frame
    if len(frame) == 0:
        problems.add("the file has no records")
        problems.raise_if_any()
    columns = [c for c in frame.columns if c != frame.geometry.name]
    mapping, extra = column_map(layer, columns)
    by_field = {target: column for column, target in mapping.items()}
    values: dict[str, list[Any]] = {}
    for f in layer.fields:
        raw = frame[by_field[f.name]].tolist() if f.name in by_field else [None] * len(frame)
        values[f.name] = parse_field(f, raw, problems)
    codes, generated = _codes(frame, by_field.get("code"), layer, problems)
    if layer is GRIDS:
        _check_grid_hierarchy(codes, values, problems)
    properties = parse_properties(frame, extra)
    checked = check_geometries(
        np.asarray(frame.geometry.array, dtype=object), layer.geometry, source_crs, problems
    )
    problems.raise_if_any()
    return PreparedRows(
        layer,
        source,
        source_crs.name,
        codes,
        values,
        properties,
        checked.geoms,
        generated,
        checked.repaired,
    )


def _codes(
    frame: Any, column: str | None, layer: LayerSpec, problems: ProblemList
) -> tuple[list[str], bool]:
    if column is None:
        if layer.code_pattern:
            problems.add("no code column: this layer needs a code on every row")
            return [""] * len(frame), False
        return [""] * len(frame), True
    seen: dict[str, int] = {}
    codes: list[str] = []
    for i, raw in enumerate(frame[column].tolist()):
        code = "" if raw is None or raw != raw else str(raw).strip()
        if code.endswith(".0") and code[:-2].isdigit():
            code = code[:-2]  # spreadsheets turn numeric codes into floats
        if not code:
            problems.add("code missing", row=i + 1, field="code")
        elif layer.code_pattern and not re.fullmatch(layer.code_pattern, code):
            problems.add(
                f"code does not match the required form {layer.code_pattern}", i + 1, "code", code
            )
        elif code in seen:
            problems.add(f"duplicate code (also row {seen[code]})", i + 1, "code", code)
        else:
            seen[code] = i + 1
        codes.append(code)
    return codes, False


def _check_grid_hierarchy(
    codes: list[str], values: dict[str, list[Any]], problems: ProblemList
) -> None:
    for i, (code, level) in enumerate(zip(codes, values["level"], strict=True)):
        if not code or level is None or not code.isdigit() or len(code) != 15:
            continue
        parent = values["parent_code"][i]
        reason = grid_codes.problem_with(code, level, parent)
        if reason:
            problems.add(reason, row=i + 1, field="code", value=code)
        elif parent is None:
            values["parent_code"][i] = grid_codes.parent_of(code)


def _existing(conn: Connection, table: str, codes: set[str]) -> set[str]:
    if not codes:
        return set()
    result = conn.execute(
        text(f'SELECT code FROM "{table}" WHERE code = ANY(:codes)'),  # noqa: S608 (declared name)
        {"codes": list(codes)},
    )
    return {row[0] for row in result}


def check_references(conn: Connection, rows: PreparedRows, problems: ProblemList) -> None:
    """Refuse codes that refer to rows missing from their layer (import and edit share it)."""
    layer = rows.layer
    for f in layer.fields:
        targets: list[tuple[int, str, str]] = []  # (row, table, code)
        if f.references is not None:
            targets = [(i, f.references.layer, v) for i, v in enumerate(rows.values[f.name]) if v]
        elif f.name == "owner_code":
            owners = rows.values["owner_layer"]
            targets = [
                (i, owners[i], v) for i, v in enumerate(rows.values[f.name]) if v and owners[i]
            ]
        for table in {t for _, t, _ in targets}:
            wanted = {code for _, t, code in targets if t == table}
            found = _existing(conn, table, wanted)
            if table == layer.table:
                found |= set(rows.codes)
            for i, t, code in targets:
                if t == table and code not in found:
                    problems.add(
                        f"refers to {table} {code!r}, which does not exist", i + 1, f.name, code
                    )


def _generate_codes(conn: Connection, rows: PreparedRows) -> None:
    prefix = rows.layer.code_prefix
    taken = {
        r[0]
        for r in conn.execute(
            text(f'SELECT code FROM "{rows.layer.table}" WHERE code LIKE :p'),  # noqa: S608
            {"p": f"{prefix}-%"},
        )
    }
    n = 0
    for i in range(len(rows.codes)):
        n += 1
        while f"{prefix}-{n:06d}" in taken:
            n += 1
        rows.codes[i] = f"{prefix}-{n:06d}"


def write_rows(
    conn: Connection, rows: PreparedRows, mode: Mode = "insert", progress: Progress | None = None
) -> ImportReport:
    """Write prepared rows in the caller's transaction, after the checks that need the database."""
    layer = rows.layer
    problems = ProblemList(rows.source)
    # Serialise writers of this layer so code checks cannot race a concurrent import.
    conn.execute(text(f'LOCK TABLE "{layer.table}" IN SHARE ROW EXCLUSIVE MODE'))
    if rows.generated_codes:
        _generate_codes(conn, rows)
    elif mode == "insert":
        for code in _existing(conn, layer.table, set(rows.codes)):
            problems.add(
                "code already exists in this layer (use --mode upsert to update)",
                rows.codes.index(code) + 1,
                "code",
                code,
            )
    check_references(conn, rows, problems)
    problems.raise_if_any()
    inserted = _copy_and_merge(conn, rows, progress)
    return ImportReport(
        layer=layer.id,
        source=rows.source,
        crs=rows.crs,
        rows=len(rows),
        inserted=inserted,
        updated=len(rows) - inserted,
        generated_codes=len(rows) if rows.generated_codes else 0,
        repaired=rows.repaired,
    )


def _copy_and_merge(conn: Connection, rows: PreparedRows, progress: Progress | None) -> int:
    layer = rows.layer
    fields = list(layer.field_names())
    columns = ["code", *fields, "properties", "geom"]
    column_list = ", ".join(f'"{c}"' for c in columns)
    conn.execute(
        text(
            f"CREATE TEMP TABLE _import_stage ON COMMIT DROP AS "  # noqa: S608 (declared names)
            f'SELECT {column_list} FROM "{layer.table}" WITH NO DATA'
        )
    )
    wkb = shapely.to_wkb(shapely.set_srid(rows.geoms, SRID), hex=True, include_srid=True)
    raw = conn.connection.driver_connection
    assert raw is not None
    total = len(rows)
    with raw.cursor() as cur, cur.copy(f"COPY _import_stage ({column_list}) FROM STDIN") as copy:
        for i in range(total):
            copy.write_row(
                (
                    rows.codes[i],
                    *(rows.values[f][i] for f in fields),
                    json.dumps(rows.properties[i], ensure_ascii=False, default=str),
                    wkb[i],
                )
            )
            if progress is not None and (i + 1) % COPY_CHUNK == 0:
                progress(i + 1, total)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != "code")
    result = conn.execute(
        text(
            f'INSERT INTO "{layer.table}" ({column_list}) '  # noqa: S608 (declared names)
            f"SELECT {column_list} FROM _import_stage "
            f"ON CONFLICT (code) DO UPDATE SET {updates} "
            "RETURNING (xmax = 0) AS inserted"
        )
    )
    inserted = sum(1 for (flag,) in result if flag)
    conn.execute(text("DROP TABLE _import_stage"))
    if progress is not None:
        progress(total, total)
    return inserted
