"""What a field upload becomes: validated WGS-84 observations and tracks, and what was refused.

This is the contract between the file readers and whatever stores an upload. Nothing here
touches a database: the storing side decides what to do with `refused` (refuse the upload,
or accept the rest when the client asked for a partial upload), but it can always report
every refused point, because the readers never drop one silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from data.problems import InvalidImport, Problem

__all__ = [
    "FORMATS",
    "FieldPoint",
    "FieldTrack",
    "Format",
    "InvalidUpload",
    "ParsedUpload",
    "TrackKind",
    "combine",
]

Format = Literal["gpx", "kml", "kmz", "geojson", "csv", "nmea", "jpeg"]
FORMATS: tuple[Format, ...] = ("gpx", "kml", "kmz", "geojson", "csv", "nmea", "jpeg")

TrackKind = Literal["track", "route", "line"]
"""`track`: recorded as walked (GPX trk, KML gx:Track, NMEA log), vertices usually timed;
`route`: planned, not walked (GPX rte), so it must not count as a patrol;
`line`: a drawn or exported line whose origin the file does not say (KML/GeoJSON/WKT)."""


@dataclass(frozen=True, slots=True)
class FieldPoint:
    """One validated position: a waypoint, a photo, a CSV row, or a vertex of a track.

    `row` locates it in the file: the 1-based number of its feature element (GPX wpt/rte/trk
    counted together, KML Placemark, GeoJSON feature), CSV data row (header excluded) or NMEA
    line; a vertex of a GPX/KML/GeoJSON/CSV line carries its line's row, an NMEA fix the
    number of its first sentence's line. `orig_x`/`orig_y` are the numbers as written, in
    `crs`; `lon`/`lat` are WGS-84. `accuracy_m` is the horizontal accuracy the device
    reported (hAcc, EXIF GPSHPositioningError, an accuracy column) or else HDOP x the
    profile's UERE; None when neither is known, so that snapping can refuse to guess.
    `observed_at` is aware UTC. `photo` is the cleaned JPEG (see data.field.photo).
    """

    row: int
    lon: float
    lat: float
    orig_x: float
    orig_y: float
    crs: str
    observed_at: datetime | None = None
    elevation_m: float | None = None
    accuracy_m: float | None = None
    hdop: float | None = None
    pdop: float | None = None
    vdop: float | None = None
    satellites: int | None = None
    name: str | None = None
    description: str | None = None
    kind: str | None = None
    device: str | None = None
    properties: dict[str, object] = field(default_factory=dict)
    photo: bytes | None = None


@dataclass(frozen=True, slots=True)
class FieldTrack:
    """A line from the file: a GPX track segment or route, a KML line or track, an NMEA log.

    Each GPX `trkseg` is its own FieldTrack (properties["segment"], 1-based) because the gap
    between segments is a signal loss, not a path walked. `points` are full FieldPoints, so a
    vertex keeps its time, accuracy and extensions (heart rate, hAcc, ...).
    """

    row: int
    name: str | None
    points: tuple[FieldPoint, ...]
    properties: dict[str, object] = field(default_factory=dict)
    kind: TrackKind = "track"


@dataclass(frozen=True)
class ParsedUpload:
    """Everything a file yielded: accepted points and tracks, refused items, warnings.

    `refused` holds one Problem per refused point, vertex, track or sentence (row set);
    `warnings` hold things the caller should show but that refused nothing (times read in an
    assumed zone, sentences ignored, points flagged outside the jurisdiction).
    """

    format: Format
    crs: str
    points: list[FieldPoint]
    tracks: list[FieldTrack]
    refused: list[Problem]
    warnings: list[Problem]


def combine(parts: Iterable[ParsedUpload]) -> ParsedUpload:
    """One ParsedUpload from the chunks of a file, in file order; refusals sorted by row."""
    chunks = list(parts)
    if not chunks:
        raise ValueError("combine needs at least one chunk")
    refused = [p for c in chunks for p in c.refused]
    refused.sort(key=lambda p: p.row or 0)
    return ParsedUpload(
        chunks[0].format,
        chunks[0].crs,
        [p for c in chunks for p in c.points],
        [t for c in chunks for t in c.tracks],
        refused,
        [w for c in chunks for w in c.warnings],
    )


class InvalidUpload(InvalidImport):
    """A field file that cannot be read at all: nothing in it is usable, nothing is written.

    A ValueError (through InvalidImport) whose message names the file and the problem, and
    whose `problems` list is what an HTTP 4xx body reports.
    """

    def __init__(self, source: str, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        super().__init__(source, problems)

    @property
    def reason(self) -> str:
        """The first problem's text: the one-line answer for a client."""
        return self.problems[0].reason if self.problems else str(self)


@dataclass(slots=True, eq=False, repr=False)
class _PointBuilder:
    """FieldPoint's mutable twin: same slots in the same order, so same memory layout."""

    row: int
    lon: float
    lat: float
    orig_x: float
    orig_y: float
    crs: str
    observed_at: datetime | None
    elevation_m: float | None
    accuracy_m: float | None
    hdop: float | None
    pdop: float | None
    vdop: float | None
    satellites: int | None
    name: str | None
    description: str | None
    kind: str | None
    device: str | None
    properties: dict[str, object]
    photo: bytes | None


assert _PointBuilder.__slots__ == FieldPoint.__slots__


def new_point(*values: object) -> FieldPoint:
    """FieldPoint(*values) (positional, in field order), three times faster.

    A frozen dataclass's __init__ must assign every field through object.__setattr__, which
    made building 100,000 points the largest single cost of a big upload (0.86 s against
    0.26 s here). The twin class assigns its slots directly; relabelling the finished object
    as a FieldPoint is allowed because the slot layout is identical, and from then on it is
    an ordinary, immutable FieldPoint (equal to one built the slow way: tested).
    """
    point = _PointBuilder(*values)  # type: ignore[arg-type]
    point.__class__ = FieldPoint  # type: ignore[assignment]
    return point  # type: ignore[return-value]


def new_points(*columns: Iterable[object]) -> list[FieldPoint]:
    """`new_point` for every row of `columns` (one iterable per field, in field order),
    without a Python loop around the constructor."""
    points: list[Any] = list(map(_PointBuilder, *columns))
    for point in points:
        point.__class__ = FieldPoint
    return points
