"""Check and convert every point of an upload at once, and say why each refused one was.

Coordinates are checked as numpy arrays (finite, in range, in China, in the jurisdiction),
converted with one `SourceCrs.to_wgs84` call, and only then turned into FieldPoints, so a
100,000-point file costs one vectorised pass plus one cheap Python loop.

Swapped latitude/longitude is the commonest field mistake, and it is told apart from a
point that is merely far away by trying the swapped pair: if (y, x) lands in the expected
region (the jurisdiction, else China) while (x, y) does not, the columns were swapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from data.crs import SourceCrs
from data.field.draft import Draft, Drafts, TrackDraft, naive_warning, parse_time, where
from data.field.model import FieldPoint, FieldTrack, ParsedUpload, combine, new_points
from data.geometries import CHINA_LAT, CHINA_LON
from data.problems import Problem

BBox = tuple[float, float, float, float]
"""min_lon, min_lat, max_lon, max_lat in WGS-84."""

OutsidePolicy = Literal["refuse", "flag"]

_OK: Final = 0
_NOT_FINITE: Final = 1
_SWAPPED: Final = 2
_RANGE: Final = 3
_UNCONVERTIBLE: Final = 4
_OUTSIDE_CHINA: Final = 5
_OUTSIDE_JURISDICTION: Final = 6

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Context:
    """Everything validation needs besides the drafts."""

    crs: SourceCrs
    uere_m: float
    now: datetime
    clock_skew: timedelta
    jurisdiction: BBox | None = None
    outside_jurisdiction: OutsidePolicy = "refuse"


def _box(lon: Floats, lat: Floats, box: BBox) -> Bools:
    return (lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])


_CHINA: Final[BBox] = (CHINA_LON[0], CHINA_LAT[0], CHINA_LON[1], CHINA_LAT[1])


def classify(x: Floats, y: Floats, ctx: Context) -> tuple[NDArray[np.int8], Floats, Floats]:
    """Per point a verdict code and the WGS-84 lon/lat (NaN where not converted)."""
    crs = ctx.crs
    n = x.size
    code = np.zeros(n, dtype=np.int8)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    finite = np.isfinite(x) & np.isfinite(y)
    in_range = finite & (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0) if crs.is_geographic else finite
    idx = np.flatnonzero(in_range)
    if idx.size:
        lon[idx], lat[idx] = crs.to_wgs84(x[idx], y[idx])
    converted = np.isfinite(lon) & np.isfinite(lat)
    in_china = converted & _box(lon, lat, _CHINA)
    region = _box(lon, lat, ctx.jurisdiction) & in_china if ctx.jurisdiction else in_china
    suspect = np.flatnonzero(finite & ~region)
    swapped = np.zeros(n, dtype=bool)
    if suspect.size:
        sx, sy = y[suspect], x[suspect]
        ok = (
            (np.abs(sx) <= 180.0) & (np.abs(sy) <= 90.0)
            if crs.is_geographic
            else np.ones_like(sx, bool)
        )
        slon = np.full(suspect.size, np.nan)
        slat = np.full(suspect.size, np.nan)
        if ok.any():
            slon[ok], slat[ok] = crs.to_wgs84(sx[ok], sy[ok])
        target = ctx.jurisdiction or _CHINA
        swapped[suspect] = _box(slon, slat, target) & _box(slon, slat, _CHINA)
    code[~region] = _OUTSIDE_JURISDICTION
    code[~in_china] = _OUTSIDE_CHINA
    code[~converted] = _UNCONVERTIBLE
    code[~in_range] = _RANGE
    code[swapped] = _SWAPPED
    code[~finite] = _NOT_FINITE
    return code, lon, lat


def _coordinate_problem(draft: Draft, code: int, lon: float, lat: float, ctx: Context) -> Problem:
    given = f"{draft.x}, {draft.y}"
    name = ctx.crs.name
    if code == _NOT_FINITE:
        return draft.problem(
            f"coordinate is not a finite number (NaN or infinite): {given}", "coordinates"
        )
    if code == _SWAPPED:
        region = "the jurisdiction" if ctx.jurisdiction else "China"
        return draft.problem(
            f"latitude and longitude appear swapped: ({given}) read as (lon, lat) is outside "
            f"{region}, swapped it is inside; put longitude first",
            "coordinates",
        )
    if code == _RANGE:
        return draft.problem(
            f"coordinates out of range for {name} (longitude -180..180, latitude -90..90): {given}",
            "coordinates",
        )
    if code == _UNCONVERTIBLE:
        return draft.problem(f"coordinates {given} cannot be converted from {name}", "coordinates")
    if code == _OUTSIDE_CHINA:
        return draft.problem(
            f"outside China after converting from {name} ({lon:.6f}, {lat:.6f}): "
            "wrong CRS declared?",
            "coordinates",
        )
    box = ctx.jurisdiction
    assert box is not None
    return draft.problem(
        f"outside the jurisdiction ({lon:.6f}, {lat:.6f} not in lon {box[0]}..{box[2]}, "
        f"lat {box[1]}..{box[3]})",
        "coordinates",
    )


@dataclass(frozen=True)
class _Column:
    """One numeric field of every draft: values (NaN if none), and which were absent/unreadable."""

    values: Floats
    missing: Bools
    unreadable: Bools

    def objects(self) -> list[object]:
        """Python floats, None where absent."""
        return _or_none(self.values, self.missing)


def _or_none(values: NDArray[np.generic], absent: Bools) -> list[object]:
    """values as Python numbers, None where `absent`."""
    out = values.astype(object)
    out[absent] = None
    result: list[object] = out.tolist()
    return result


def _column(raw: list[object]) -> _Column:
    """Convert one field of all drafts at once; the slow path only when something is odd.

    numpy parses a list of numeric strings and numbers in C (None becomes NaN); only when
    it meets text that is not a number does each value get its own float() to find which.
    """
    n = len(raw)
    none = np.zeros(n, dtype=bool)
    absent = raw.count(None)
    if absent == n:
        return _Column(np.full(n, np.nan), ~none, none)
    missing = (
        none.copy() if not absent else np.fromiter((v is None for v in raw), dtype=bool, count=n)
    )
    try:
        return _Column(np.array(raw, dtype=np.float64), missing, none)
    except (ValueError, TypeError):
        pass
    values = np.full(n, np.nan)
    unreadable = none.copy()
    for i, value in enumerate(raw):
        if value is None:
            continue
        if isinstance(value, str) and not value.strip():
            missing[i] = True
            continue
        try:
            values[i] = float(value)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            unreadable[i] = True
    return _Column(values, missing, unreadable)


_NUMERIC: Final = ("elevation", "accuracy", "hdop", "pdop", "vdop", "satellites")


class _Refusals:
    """Problems per draft index; a draft with any is refused."""

    def __init__(self, every: list[Draft]) -> None:
        self.every = every
        self.by_index: dict[int, list[Problem]] = {}

    def add(self, i: int, problem: Problem) -> None:
        self.by_index.setdefault(i, []).append(problem)

    def mask(self, mask: Bools, reason: str, field: str, raw: list[object] | None = None) -> None:
        for i in np.flatnonzero(mask).tolist():
            value = raw[i] if raw is not None else None
            self.add(i, self.every[i].problem(reason, field, value))


def _check_numbers(every: list[Draft], refusals: _Refusals) -> tuple[dict[str, _Column], Bools]:
    """Convert the numeric fields; refuse unreadable, non-finite and negative values."""
    columns: dict[str, _Column] = {}
    for name in _NUMERIC:
        raw = list(map(attrgetter(name), every))
        column = columns[name] = _column(raw)
        refusals.mask(column.unreadable, f"{name} is not a number", name, raw)
        present = ~column.missing & ~column.unreadable
        values = column.values
        with np.errstate(invalid="ignore"):
            if name == "elevation":
                wrong = present & ~np.isfinite(values)
                refusals.mask(wrong, "elevation is not a finite number", name, raw)
            elif name == "satellites":
                wrong = present & ~(
                    np.isfinite(values) & (values >= 0) & (values == np.round(values))
                )
                refusals.mask(wrong, "satellites must be a whole number >= 0", name, raw)
            else:
                wrong = present & ~(np.isfinite(values) & (values >= 0))
                refusals.mask(wrong, f"{name} must be a finite number >= 0", name, raw)
    acc, hdop = columns["accuracy"], columns["hdop"]
    return columns, acc.missing & hdop.missing


def _times(
    every: list[Draft], drafts: Drafts, refusals: _Refusals, ctx: Context
) -> tuple[list[object], int]:
    """Aware UTC datetimes (None where absent), and how many had no zone; refuse unreadable
    and future ones."""
    limit = ctx.now + ctx.clock_skew
    fast = _utc_times(every, limit)
    if fast is not None:
        return fast, 0
    zone = drafts.naive_tz
    naive = 0
    out: list[object] = [None] * len(every)
    fromiso = datetime.fromisoformat
    for i, draft in enumerate(every):
        value = draft.time
        if value is None:
            continue
        try:
            if isinstance(value, datetime):
                parsed = value
                if parsed.tzinfo is None:
                    naive += 1
                    parsed = parsed.replace(tzinfo=zone)
                parsed = parsed.astimezone(UTC)
            elif isinstance(value, str):
                try:
                    parsed = fromiso(value.strip())
                except ValueError:
                    parsed = _loose_time(value)
                if parsed.tzinfo is None:
                    naive += 1
                    parsed = parsed.replace(tzinfo=zone)
                parsed = parsed.astimezone(UTC)
            else:
                parsed, _ = parse_time(value, zone)
        except (ValueError, OverflowError, OSError, TypeError):
            refusals.add(i, draft.problem("time is not a date-time", "time", value))
            continue
        if parsed > limit:
            skew = int(ctx.clock_skew.total_seconds() // 60)
            refusals.add(
                i,
                draft.problem(
                    f"time {parsed.isoformat()} is in the future (now "
                    f"{ctx.now.isoformat(timespec='seconds')}, {skew} min clock skew allowed)",
                    "time",
                    value,
                ),
            )
            continue
        out[i] = parsed
    return out, naive


def _utc_times(every: list[Draft], limit: datetime) -> list[object] | None:
    """The usual file's times, in one pass without a per-point branch: every draft's time
    an ISO 8601 string in UTC, none in the future. None when any is otherwise; `_times`
    then reads them one by one, with the same results for these."""
    raw = list(map(_TIME, every))
    if not raw or not all(type(v) is str for v in raw):
        return None
    try:
        parsed = list(map(datetime.fromisoformat, raw))
    except ValueError:
        return None
    if not all(p.tzinfo is UTC for p in parsed) or max(parsed) > limit:
        return None
    return list(parsed)


_TIME: Final = attrgetter("time")
_DRAFT_FIELDS: Final = attrgetter(
    "row", "name", "description", "kind", "device", "properties", "photo"
)


def _loose_time(text: str) -> datetime:
    """parse_time's slower forms (Excel dates, epochs), naive kept naive for counting."""
    parsed, naive = parse_time(text, UTC)
    return parsed.replace(tzinfo=None) if naive else parsed


def finish(drafts: Drafts, ctx: Context) -> ParsedUpload:
    """Validate and convert all drafts; refused ones become Problems, flagged ones warnings."""
    return combine(finish_chunks([drafts], ctx))


def finish_chunks(chunks: Iterable[Drafts], ctx: Context) -> Iterator[ParsedUpload]:
    """`finish` one chunk of a file at a time, in file order, as the reader yields them.

    Times without a zone are counted over the whole file: one warning, in a last chunk
    that holds nothing else, so the chunks together say exactly what `finish` says.
    """
    naive = 0
    last: Drafts | None = None
    for drafts in chunks:
        parsed, count = _finish(drafts, ctx)
        naive += count
        last = drafts
        yield parsed
    if last is not None and naive:
        warnings = naive_warning(naive, last.naive_tz, last.naive_why)
        yield ParsedUpload(last.format, ctx.crs.name, [], [], [], warnings)


def _finish(drafts: Drafts, ctx: Context) -> tuple[ParsedUpload, int]:
    every: list[Draft] = list(drafts.points)
    for track in drafts.tracks:
        every.extend(track.vertices)
    refusals = _Refusals(every)
    for i, draft in enumerate(every):
        if draft.issues:
            for issue in draft.issues:
                refusals.add(i, draft.problem(issue.reason, issue.field, issue.value))
    xs_raw = [d.x for d in every]
    ys_raw = [d.y for d in every]
    xs, ys = _column(xs_raw), _column(ys_raw)
    for column, raw, label in ((xs, xs_raw, "longitude"), (ys, ys_raw, "latitude")):
        refusals.mask(column.missing, f"{label} is missing", label)
        refusals.mask(column.unreadable, f"{label} is not a number", label, raw)
    told = xs.missing | xs.unreadable | ys.missing | ys.unreadable
    for i in refusals.by_index:
        issues = every[i].issues
        if issues and any(issue.coordinate for issue in issues):
            told[i] = True
    code, lon, lat = classify(xs.values, ys.values, ctx)
    warnings = drafts.warnings
    flag_outside = ctx.outside_jurisdiction == "flag"
    lons, lats = lon.tolist(), lat.tolist()
    for i in np.flatnonzero((code != _OK) & ~told).tolist():
        verdict = int(code[i])
        problem = _coordinate_problem(every[i], verdict, lons[i], lats[i], ctx)
        if verdict == _OUTSIDE_JURISDICTION and flag_outside:
            warnings.append(problem)
        else:
            refusals.add(i, problem)
    columns, no_accuracy = _check_numbers(every, refusals)
    times, naive = _times(every, drafts, refusals, ctx)
    accuracy = np.where(
        columns["accuracy"].missing, columns["hdop"].values * ctx.uere_m, columns["accuracy"].values
    )
    accuracies = _or_none(accuracy, no_accuracy)
    elevations = columns["elevation"].objects()
    hdops, pdops, vdops = (columns[k].objects() for k in ("hdop", "pdop", "vdop"))
    sats = columns["satellites"]
    whole = np.where(sats.missing | ~np.isfinite(sats.values), 0, sats.values).astype(np.int64)
    satellites = _or_none(whole, sats.missing)
    origin_x, origin_y = xs.values.tolist(), ys.values.tolist()
    crs_name = ctx.crs.name
    refused_at = refusals.by_index
    rows, names, descriptions, kinds, devices, properties, photos = (
        zip(*map(_DRAFT_FIELDS, every), strict=True) if every else ((),) * 7
    )
    built: list[FieldPoint | None] = list(
        new_points(
            rows,
            lons,
            lats,
            origin_x,
            origin_y,
            repeat(crs_name),
            times,
            elevations,
            accuracies,
            hdops,
            pdops,
            vdops,
            satellites,
            names,
            descriptions,
            kinds,
            devices,
            properties,
            photos,
        )
    )
    for i in refused_at:  # built like the others (values unchecked), then left out
        built[i] = None
    refused = list(drafts.refused)
    for problems in refused_at.values():
        refused.extend(problems)
    n_points = len(drafts.points)
    points = [p for p in built[:n_points] if p is not None]
    tracks: list[FieldTrack] = []
    start = n_points
    for track in drafts.tracks:
        stop = start + len(track.vertices)
        vertices = tuple(p for p in built[start:stop] if p is not None)
        start = stop
        refusal = _track_problem(track, len(vertices))
        if refusal is not None:
            refused.append(refusal)
            continue
        tracks.append(FieldTrack(track.row, track.name, vertices, track.properties, track.kind))
    refused.sort(key=lambda p: p.row or 0)
    return ParsedUpload(drafts.format, crs_name, points, tracks, refused, warnings), naive


def _track_problem(track: TrackDraft, valid: int) -> Problem | None:
    at = where(track.element, track.line)
    prefix = f"{at}: " if at else ""
    if track.issues:
        issue = track.issues[0]
        return Problem(prefix + issue.reason, track.row, issue.field, issue.value)
    if valid < 2:
        total = len(track.vertices)
        return Problem(
            f"{prefix}a line needs at least 2 valid points; it has {valid} of {total}",
            track.row,
        )
    return None
