"""CSV from field apps and Chinese Excel, read by the project's own CSV reader.

`data.csv_table.read_csv_table` already knows the encodings (UTF-8, BOM, GBK/GB18030),
delimiters and coordinate column names (lon/lat, lng, x/y, 经度/纬度, WKT). It refuses a
whole table when a row's coordinates are unreadable, which is right for layer imports but
not for field uploads, where one bad row must be refused by itself: those rows are cut out
of the table and it is read again, their problems kept with their original row numbers.
"""

from __future__ import annotations

import csv
import io
from datetime import tzinfo
from typing import Final

import geopandas as gpd
import numpy as np
import shapely

from data.csv_table import decode, read_csv_table
from data.field.draft import Draft, Drafts, TrackDraft, apply_attributes, apply_track_attributes
from data.field.model import InvalidUpload
from data.problems import InvalidImport, Problem

MAX_REREADS: Final = 10
"""Each reread removes up to data.problems.MAX_PROBLEMS (200) bad rows."""


def _delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _row_problems(exc: InvalidImport, source: str) -> list[Problem]:
    """The row problems of a refused table; InvalidUpload when any is about the whole file."""
    if any(p.row is None for p in exc.problems) or not exc.problems:
        raise InvalidUpload(source, exc.problems or [Problem(str(exc))]) from exc
    return exc.problems


def _read(raw: bytes, source: str) -> tuple[gpd.GeoDataFrame, list[int], list[Problem]]:
    """The readable rows, their 1-based data row numbers, and the unreadable rows' problems."""
    try:
        frame = read_csv_table(raw, source)
        return frame, list(range(1, len(frame) + 1)), []
    except InvalidImport as exc:
        first = _row_problems(exc, source)
    text = decode(raw, source)
    delimiter = _delimiter(text)
    records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
    header, data = records[0], records[1:]
    refused = list(first)
    bad = {p.row for p in first}
    for _ in range(MAX_REREADS):
        kept = [(n, record) for n, record in enumerate(data, start=1) if n not in bad]
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(record for _, record in kept)
        try:
            frame = read_csv_table(out.getvalue().encode("utf-8"), source)
        except InvalidImport as exc:
            for problem in _row_problems(exc, source):
                assert problem.row is not None
                original = kept[problem.row - 1][0]
                bad.add(original)
                refused.append(Problem(problem.reason, original, problem.field, problem.value))
            continue
        return frame, [n for n, _ in kept], refused
    raise InvalidUpload(
        source, [*refused[:200], Problem("too many rows with unreadable coordinates")]
    )


def read_table(raw: bytes, source: str, local_tz: tzinfo) -> Drafts:
    """Points (Point/MultiPoint rows) and lines (LineString WKT rows) of a CSV table."""
    frame, rows, refused = _read(raw, source)
    drafts = Drafts(
        "csv",
        refused=refused,
        geographic_only=False,
        naive_tz=local_tz,
        naive_why="time column without offset",
    )
    geoms = np.asarray(frame.geometry.array, dtype=object)
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    type_ids = shapely.get_type_id(geoms)
    points = geoms.copy()
    points[type_ids != 0] = None
    kinds = type_ids.tolist()
    z_rows = shapely.has_z(points).tolist()
    zs = shapely.get_z(points).tolist()  # NaN for 2-D points and non-points
    xs = shapely.get_x(points).tolist()
    ys = shapely.get_y(points).tolist()
    for i, (row, values) in enumerate(zip(rows, records, strict=True)):
        kind = kinds[i]
        if kind == 0:  # Point
            draft = Draft(row, xs[i], ys[i])
            if z_rows[i]:
                draft.elevation = zs[i]
            apply_attributes(draft, values)
            drafts.points.append(draft)
        elif kind == 4:  # MultiPoint
            for k, (x, y) in enumerate(shapely.get_coordinates(geoms[i]).tolist(), start=1):
                draft = Draft(row, x, y, f"MultiPoint position {k}")
                apply_attributes(draft, values)
                drafts.points.append(draft)
        elif kind == 1:  # LineString
            track = TrackDraft(row, "line", element="LineString")
            apply_track_attributes(track, values)
            track.vertices = [
                Draft(row, x, y, f"LineString position {k}")
                for k, (x, y) in enumerate(shapely.get_coordinates(geoms[i]).tolist(), start=1)
            ]
            drafts.tracks.append(track)
        else:
            name = geoms[i].geom_type if geoms[i] is not None else "no geometry"
            drafts.refused.append(
                Problem(
                    f"{name} is not a field observation (points and lines only)", row, "geometry"
                )
            )
    return drafts
