"""Records as the readers find them, before validation, and the helpers readers share.

Readers only take values out of the file's structure; they do not convert them. Numbers,
times and coordinates are converted and checked once, a column at a time, in `validate`,
and a value that cannot be read refuses its point there instead of failing the file.
Structural problems a reader meets (a gx:Track with more times than positions) are noted
on the record as `issues`, with the same effect.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final

from data.crs import SourceCrs
from data.field.model import Format, TrackKind
from data.problems import Problem

CHINA_TZ: Final = timezone(timedelta(hours=8), "UTC+08:00")
"""China has one zone, no daylight saving: the likeliest meaning of a time without a zone."""


@dataclass(slots=True)
class Issue:
    """A value that could not be read; it refuses its point."""

    reason: str
    field: str | None = None
    value: str | None = None
    coordinate: bool = False
    """About the coordinates themselves: validation then adds no second coordinate problem."""


class Draft:
    """A point as read, values as the file has them, converted later column by column.

    `x`/`y` and the numeric fields hold text (XML, CSV), numbers (JSON, NMEA, EXIF) or None;
    `time` holds text, an epoch number or a datetime (naive ones are read in the reader's
    zone). Converting 100,000 values per field at once in numpy is what keeps a big upload
    fast; a per-value parse call costs more than the parse.

    A plain class whose absent fields fall back to the class defaults: a reader sets only
    what the file has, which makes a draft about three times cheaper to create than a
    dataclass with nineteen fields.
    """

    time: object = None
    elevation: object = None
    accuracy: object = None
    hdop: object = None
    pdop: object = None
    vdop: object = None
    satellites: object = None
    name: str | None = None
    description: str | None = None
    kind: str | None = None
    device: str | None = None
    photo: bytes | None = None
    issues: list[Issue] | None = None

    def __init__(
        self, row: int, x: object, y: object, element: str | None = None, line: int | None = None
    ) -> None:
        self.row = row
        self.x = x
        self.y = y
        self.element = element
        self.line = line
        self.properties: dict[str, object] = {}

    @property
    def where(self) -> str:
        """Where in the file, for messages: 'wpt at line 12', 'line 7', ''."""
        return where(self.element, self.line)

    def problem(self, reason: str, field: str | None = None, value: object = None) -> Problem:
        """A Problem for this record, its element and line prefixed to the reason."""
        at = self.where
        shown = None if value is None else str(value)[:80]
        return Problem(f"{at}: {reason}" if at else reason, self.row, field, shown)

    def issue(
        self, reason: str, field: str | None = None, value: object = None, coordinate: bool = False
    ) -> None:
        """Note a value that cannot be read: it refuses this point."""
        shown = None if value is None else str(value)[:80]
        if self.issues is None:
            self.issues = []
        self.issues.append(Issue(reason, field, shown, coordinate))


@dataclass(slots=True)
class TrackDraft:
    """A line as read: its vertices are Drafts, validated with the points."""

    row: int
    kind: TrackKind
    name: str | None = None
    vertices: list[Draft] = field(default_factory=list)
    properties: dict[str, object] = field(default_factory=dict)
    element: str | None = None
    line: int | None = None
    issues: list[Issue] = field(default_factory=list)


@dataclass
class Drafts:
    """What a reader found in a file."""

    format: Format
    points: list[Draft] = field(default_factory=list)
    tracks: list[TrackDraft] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    file_crs: SourceCrs | None = None
    """A CRS the file itself names (a legacy GeoJSON `crs` member), used when none is declared."""
    geographic_only: bool = True
    """Formats that store degrees by definition (GPX, KML, NMEA, EXIF) refuse projected CRSs."""
    naive_tz: tzinfo = UTC
    """The zone of times written without one (UTC for GPX and NMEA by specification)."""
    naive_why: str = "GPX and NMEA times are UTC by specification"


def where(element: str | None, line: int | None) -> str:
    """'wpt at line 12' / 'line 12' / 'wpt' / ''."""
    if element and line:
        return f"{element} at line {line}"
    if line:
        return f"line {line}"
    return element or ""


def scalar(text: str | None) -> object:
    """Text of an extension or property as int, float or str (None when empty)."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def text_or_none(value: object) -> str | None:
    """Stripped text, None for empty."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


_LOOSE_TIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[ T]+(\d{1,2})[:时](\d{1,2})(?:[:分](\d{1,2})(\.\d+)?秒?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*"
)
# Epoch numbers: seconds until 5138 AD, milliseconds after that (phone app exports use both).
_EPOCH_MS_FROM: Final = 1e11


def parse_time(value: object, naive_tz: tzinfo) -> tuple[datetime, bool]:
    """An aware UTC datetime, and whether the text had no zone (then `naive_tz` is assumed).

    Accepts ISO 8601 / xsd:dateTime (the GPX, KML and GeoJSON norm), the forms Chinese Excel
    writes ('2024/5/1 8:30', '2024年5月1日 08:30:00') and Unix epoch seconds or milliseconds.
    Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("not a time")
    if isinstance(value, int | float):
        return _epoch(float(value)), False
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _loose(text)
    naive = parsed.tzinfo is None
    if naive:
        parsed = parsed.replace(tzinfo=naive_tz)
    return parsed.astimezone(UTC), naive


def _loose(text: str) -> datetime:
    match = _LOOSE_TIME.fullmatch(text)
    if match is None:
        if re.fullmatch(r"\d{9,14}(\.\d+)?", text):
            return _epoch(float(text))
        raise ValueError(f"not a time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = round(float(fraction) * 1e6) if fraction else 0
    tz: tzinfo | None = None
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        min(micro, 999_999),
        tzinfo=tz,
    )


def _epoch(value: float) -> datetime:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a time: {value!r}")
    seconds = value / 1000.0 if value >= _EPOCH_MS_FROM else value
    return datetime.fromtimestamp(seconds, UTC)


# Attribute names of tables and properties (CSV columns, GeoJSON properties, KML
# ExtendedData), matched case-insensitively: English, the usual abbreviations, Chinese.
TIME_KEYS: Final = (
    "time",
    "timestamp",
    "datetime",
    "date_time",
    "observed_at",
    "when",
    "时间",
    "采集时间",
    "记录时间",
    "拍摄时间",
)
DATE_KEYS: Final = ("date", "日期")
"""A separate date column (GPS logger CSVs: date,time,lat,lon) completes a time-of-day."""
KIND_KEYS: Final = ("kind", "type", "category", "类型", "类别", "问题类型", "事件类型")
NAME_KEYS: Final = ("name", "title", "名称", "标题")
DESCRIPTION_KEYS: Final = ("description", "desc", "note", "comment", "描述", "备注", "说明")
ELEVATION_KEYS: Final = ("ele", "elevation", "alt", "altitude", "高程", "海拔")
ACCURACY_KEYS: Final = ("accuracy", "hacc", "horizontal_accuracy", "accuracy_m", "精度")
HDOP_KEYS: Final = ("hdop",)
PDOP_KEYS: Final = ("pdop",)
VDOP_KEYS: Final = ("vdop",)
SATELLITE_KEYS: Final = ("sat", "sats", "satellites", "卫星数")
DEVICE_KEYS: Final = ("device", "device_id", "设备", "设备号")


def _pick(lowered: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


_FIELDS: Final = (
    ("elevation", ELEVATION_KEYS),
    ("accuracy", ACCURACY_KEYS),
    ("hdop", HDOP_KEYS),
    ("pdop", PDOP_KEYS),
    ("vdop", VDOP_KEYS),
    ("satellites", SATELLITE_KEYS),
)


@dataclass(frozen=True)
class _Plan:
    """Which of a record's keys feeds which Draft field; the rest are properties."""

    time: str | None
    date: str | None
    kind: str | None
    name: str | None
    description: str | None
    device: str | None
    numbers: tuple[tuple[str, str], ...]
    rest: tuple[str, ...]


@lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> _Plan:
    """Worked out once per set of column names, not once per row of a 100,000-row table."""
    lowered = {k.strip().lower(): k for k in keys}
    picked = {
        name: _pick(lowered, names)
        for name, names in (
            ("time", TIME_KEYS),
            ("date", DATE_KEYS),
            ("kind", KIND_KEYS),
            ("name", NAME_KEYS),
            ("description", DESCRIPTION_KEYS),
            ("device", DEVICE_KEYS),
        )
    }
    numbers = tuple(
        (attribute, key)
        for attribute, names in _FIELDS
        if (key := _pick(lowered, names)) is not None
    )
    used = {k for k in picked.values() if k is not None} | {k for _, k in numbers}
    return _Plan(**picked, numbers=numbers, rest=tuple(k for k in keys if k not in used))


def _value(values: Mapping[str, object], key: str | None) -> object:
    if key is None:
        return None
    value = values[key]
    if isinstance(value, str) and not value.strip():
        return None
    return value


def apply_attributes(draft: Draft, values: Mapping[str, object]) -> None:
    """Fill a Draft's standard fields from named values; keep the rest as properties.

    Used for CSV rows, GeoJSON properties and KML ExtendedData, so that a column called
    时间 or hAcc means the same in all three. Values stay raw: validation converts them.
    """
    plan = _plan(tuple(str(k) for k in values))
    when, day = _value(values, plan.time), _value(values, plan.date)
    if isinstance(when, str) and day is not None and not re.match(r"\s*\d{4}", when):
        when = f"{day} {when.strip()}"
    draft.time = when or day or draft.time
    draft.kind = text_or_none(_value(values, plan.kind)) or draft.kind
    draft.name = text_or_none(_value(values, plan.name)) or draft.name
    draft.description = text_or_none(_value(values, plan.description)) or draft.description
    draft.device = text_or_none(_value(values, plan.device)) or draft.device
    for attribute, key in plan.numbers:
        value = _value(values, key)
        if isinstance(value, bool):  # JSON true/false would otherwise read as 1/0
            draft.issue(f"{attribute} is not a number", attribute, value)
        elif value is not None:
            setattr(draft, attribute, value)
    properties = draft.properties
    for key in plan.rest:
        value = values[key]
        if value is not None and value != "":
            properties[key] = value


def naive_warning(count: int, zone: tzinfo, why: str) -> list[Problem]:
    """One file-level warning for times without a zone, or none."""
    if not count:
        return []
    name = zone.tzname(None) or str(zone)
    return [Problem(f"{count} time(s) without a time zone read as {name} ({why})")]


def apply_track_attributes(track: TrackDraft, values: Mapping[str, object]) -> None:
    """A line's name from named values; everything else kept as its properties, as given."""
    lowered = {str(k).strip().lower(): str(k) for k in values}
    name_key = _pick(lowered, NAME_KEYS)
    if name_key is not None:
        track.name = text_or_none(values[name_key]) or track.name
    for key, value in values.items():
        if key != name_key and value is not None and value != "":
            track.properties[str(key)] = value
