"""read_field_file: bytes of one upload in, validated WGS-84 observations out.

The single entry point the upload endpoint and the CLI use. It reads no database and
writes nothing; it raises InvalidUpload when the file as a whole cannot be used and
otherwise returns every point and track it accepted and every one it refused, with why.
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from itertools import chain
from typing import Final

from data.crs import WGS84, SourceCrs, UnknownCrs, parse_crs
from data.field.detect import detect_format
from data.field.draft import CHINA_TZ, Drafts
from data.field.geojson import read_geojson
from data.field.gpx import read_gpx
from data.field.kml import read_kml
from data.field.kmz import extract_kml
from data.field.model import Format, InvalidUpload, ParsedUpload, combine
from data.field.nmea import read_nmea
from data.field.photo import read_jpeg
from data.field.table import read_table
from data.field.validate import BBox, Context, OutsidePolicy, finish_chunks
from data.problems import Problem
from data.shared_setting import SharedSetting
from layers.profile import RuleProfile

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024
"""Upload size limit until the profile has a key for it (issue 5: default 50 MB)."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future a device clock may be before its timestamps are refused."""
CHUNK_SIZE: Final = 10_000
"""Points per chunk of a streamed file: large enough that a chunk's fixed costs (a few
statements) vanish, small enough that storing overlaps nearly all of the reading."""


def _pause_gc() -> bool:
    enabled = gc.isenabled()
    gc.disable()
    return enabled


def _resume_gc(enabled: bool) -> None:
    if enabled:
        gc.enable()


GC_PAUSE: Final = SharedSetting(_pause_gc, _resume_gc)
"""Pause Python's cyclic garbage collector while a file's objects are built.

Reading 100,000 points creates about a million objects, none in reference cycles; every
few hundred allocations the collector rescans them all, which cost 15% of a big upload
(measured). Reference counting still frees everything meanwhile. Concurrent readers share
the pause; the collector resumes (if it was on) when the last one finishes. A caller that
keeps a file's objects after the stream ends (chunks still being stored) holds it too:
resuming while they are alive makes the next collection scan them all (0.1-0.2 s at the
end of a 100,000-point upload, measured)."""


def _declared(declared_crs: str | None, source: str) -> SourceCrs | None:
    if declared_crs is None or not declared_crs.strip():
        return None
    try:
        return parse_crs(declared_crs)
    except UnknownCrs as exc:
        raise InvalidUpload(source, f"declared CRS: {exc}") from exc


def _read(
    fmt: Format, raw: bytes, source: str, local_tz: tzinfo, max_bytes: int, chunk_size: int
) -> Iterator[Drafts]:
    """The file's records in chunks (GPX builds them lazily; other formats are sliced)."""
    if fmt == "gpx":
        return read_gpx(raw, source, chunk_size)
    if fmt == "kml":
        drafts = read_kml(raw, source, local_tz)
    elif fmt == "kmz":
        kml, warnings = extract_kml(raw, source, max_bytes)
        drafts = read_kml(kml, source, local_tz, "kmz")
        drafts.warnings[:0] = warnings
    elif fmt == "geojson":
        drafts = read_geojson(raw, source, local_tz)
    elif fmt == "nmea":
        drafts = read_nmea(raw, source)
    elif fmt == "jpeg":
        drafts = read_jpeg(raw, source, local_tz)
    else:
        drafts = read_table(raw, source, local_tz)
    return _slices(drafts, chunk_size)


def _slices(drafts: Drafts, size: int) -> Iterator[Drafts]:
    """`drafts` as chunks of `size` points; tracks and the reader's own problems go first."""
    yield replace(drafts, points=drafts.points[:size])
    for start in range(size, len(drafts.points), size):
        yield replace(
            drafts, points=drafts.points[start : start + size], tracks=[], refused=[], warnings=[]
        )


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


def stream_field_file(
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
    chunk_size: int = CHUNK_SIZE,
) -> Generator[ParsedUpload, None, None]:
    """`read_field_file` one chunk at a time, so a caller can store a chunk while the next
    one is read; `combine` of the chunks is exactly what `read_field_file` returns.

    A file that cannot be read at all raises InvalidUpload at the first chunk, except a
    file found at the end to hold nothing, which raises after the last. The cyclic garbage
    collector stays paused until the stream is exhausted or closed.
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
    anything = False
    with GC_PAUSE:
        chunks = _read(fmt, raw, source, local_tz, max_bytes, chunk_size)
        first = next(chunks)
        context = Context(
            crs=_effective_crs(declared, first, source),
            uere_m=profile.field.uere_m,
            now=now,
            clock_skew=clock_skew,
            jurisdiction=jurisdiction_bbox,
            outside_jurisdiction=outside_jurisdiction,
        )
        for parsed in finish_chunks(chain([first], chunks), context):
            anything = anything or bool(parsed.points or parsed.tracks or parsed.refused)
            yield parsed
    if not anything:
        raise InvalidUpload(source, f"the {fmt.upper()} file holds no points, routes or tracks")


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
    return combine(
        stream_field_file(
            raw,
            filename,
            declared_crs,
            profile,
            now,
            jurisdiction_bbox=jurisdiction_bbox,
            outside_jurisdiction=outside_jurisdiction,
            max_bytes=max_bytes,
            clock_skew=clock_skew,
            local_tz=local_tz,
        )
    )
