"""read_field_file: bytes of one upload in, validated WGS-84 observations out.

The single entry point the upload endpoint and the CLI use. It reads no database and
writes nothing; it raises InvalidUpload when the file as a whole cannot be used and
otherwise returns every point and track it accepted and every one it refused, with why.
"""

from __future__ import annotations

import gc
import threading
from datetime import datetime, timedelta, tzinfo
from types import TracebackType
from typing import Final

from data.crs import WGS84, SourceCrs, UnknownCrs, parse_crs
from data.field.detect import detect_format
from data.field.draft import CHINA_TZ, Drafts
from data.field.geojson import read_geojson
from data.field.gpx import read_gpx
from data.field.kml import read_kml
from data.field.kmz import extract_kml
from data.field.model import Format, InvalidUpload, ParsedUpload
from data.field.nmea import read_nmea
from data.field.photo import read_jpeg
from data.field.table import read_table
from data.field.validate import BBox, Context, OutsidePolicy, finish
from data.problems import Problem
from layers.profile import RuleProfile

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024
"""Upload size limit until the profile has a key for it (issue 5: default 50 MB)."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future a device clock may be before its timestamps are refused."""


class _CyclicGcPause:
    """Pause Python's cyclic garbage collector while a file's objects are built.

    Reading 100,000 points creates about a million objects, none in reference cycles; every
    few hundred allocations the collector rescans them all, which cost 15% of a big upload
    (measured). Reference counting still frees everything meanwhile. The pause is
    process-wide, so concurrent readers share it and the collector resumes (if it was on)
    when the last one finishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._restore = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._restore:
                gc.enable()


_GC_PAUSE: Final = _CyclicGcPause()


def _declared(declared_crs: str | None, source: str) -> SourceCrs | None:
    if declared_crs is None or not declared_crs.strip():
        return None
    try:
        return parse_crs(declared_crs)
    except UnknownCrs as exc:
        raise InvalidUpload(source, f"declared CRS: {exc}") from exc


def _read(fmt: Format, raw: bytes, source: str, local_tz: tzinfo, max_bytes: int) -> Drafts:
    if fmt == "gpx":
        return read_gpx(raw, source)
    if fmt == "kml":
        return read_kml(raw, source, local_tz)
    if fmt == "kmz":
        kml, warnings = extract_kml(raw, source, max_bytes)
        drafts = read_kml(kml, source, local_tz, "kmz")
        drafts.warnings[:0] = warnings
        return drafts
    if fmt == "geojson":
        return read_geojson(raw, source, local_tz)
    if fmt == "nmea":
        return read_nmea(raw, source)
    if fmt == "jpeg":
        return read_jpeg(raw, source, local_tz)
    return read_table(raw, source, local_tz)


def _effective_crs(declared: SourceCrs | None, drafts: Drafts, source: str) -> SourceCrs:
    """The declared CRS, else the file's own, else WGS-84; projected ones only for tables."""
    crs = declared or drafts.file_crs or WGS84
    if declared and drafts.file_crs and declared != drafts.file_crs:
        drafts.warnings.append(
            Problem(
                f"the file says its CRS is {drafts.file_crs.name}; the declared {declared.name} "
                "was used"
            )
        )
    if drafts.geographic_only and not crs.is_geographic:
        raise InvalidUpload(
            source,
            f"{drafts.format.upper()} stores longitude/latitude in degrees, but the declared "
            f"CRS {crs.name} is projected (metres)",
        )
    return crs


def _check_bbox(box: BBox | None) -> None:
    if box is None:
        return
    min_lon, min_lat, max_lon, max_lat = box
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise ValueError(f"jurisdiction_bbox must be (min_lon, min_lat, max_lon, max_lat): {box}")


def read_field_file(
    raw: bytes,
    filename: str | None,
    declared_crs: str | None,
    profile: RuleProfile,
    now: datetime,
    *,
    jurisdiction_bbox: BBox | None = None,
    outside_jurisdiction: OutsidePolicy = "refuse",
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock_skew: timedelta = CLOCK_SKEW,
    local_tz: tzinfo = CHINA_TZ,
) -> ParsedUpload:
    """Read one uploaded file of any supported format into validated observations.

    The format is detected from the content (`filename` is only used in messages and to
    refuse non-images named .jpg). `declared_crs` is what the client says the coordinates
    are in (None: WGS-84, or a GeoJSON file's own `crs` member); everything returned is
    WGS-84. `now` (aware) bounds timestamps: later than now + `clock_skew` is refused.
    `jurisdiction_bbox` (WGS-84 lon/lat) sharpens the swapped-coordinates test and refuses
    (or, with outside_jurisdiction='flag', only warns about) points outside it. Times
    without a zone in formats that do not fix one (CSV, GeoJSON, KML, EXIF) are read in
    `local_tz`, China Standard Time by default, and counted in a warning.
    """
    source = filename or "upload"
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    _check_bbox(jurisdiction_bbox)
    if len(raw) > max_bytes:
        raise InvalidUpload(
            source,
            f"file is {len(raw):,} bytes, over the upload limit of {max_bytes:,} bytes",
        )
    declared = _declared(declared_crs, source)
    fmt = detect_format(raw, filename)
    with _GC_PAUSE:
        drafts = _read(fmt, raw, source, local_tz, max_bytes)
        context = Context(
            crs=_effective_crs(declared, drafts, source),
            uere_m=profile.field.uere_m,
            now=now,
            clock_skew=clock_skew,
            jurisdiction=jurisdiction_bbox,
            outside_jurisdiction=outside_jurisdiction,
        )
        parsed = finish(drafts, context)
    if not (parsed.points or parsed.tracks or parsed.refused):
        raise InvalidUpload(source, f"the {fmt.upper()} file holds no points, routes or tracks")
    return parsed
