"""NMEA 0183 logs from GPS and BeiDou receivers: GGA and RMC fixes, checksums verified.

Parsed here rather than with pynmea2 (last release January 2023, and it does not verify
checksums unless asked): only five sentence types matter and each is a comma list.

* Every sentence's checksum (XOR of the characters between `$` and `*`) is verified; a bad
  or missing one refuses that sentence, by line number, and nothing from it is used.
* Talkers are not restricted: GP (GPS), GN (combined), GB/BD (BeiDou), GL, GA, ... alike.
* A fix is the GGA and RMC sentences with the same UTC time: GGA gives altitude, HDOP and
  satellites, RMC the date (GGA has none), speed and course. GSA adds PDOP/VDOP to the fix
  before it (receivers send it after GGA), ZDA gives a date when there is no RMC.
  A time-of-day running backwards means midnight passed: the date moves on.
* Empty positions (no fix yet) are counted in a warning; a position flagged invalid (GGA
  quality 0, RMC status V or mode N) is refused, since it is stale or dead-reckoned.

The log becomes one FieldTrack (`track`) whose vertices' rows are their line numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from operator import xor
from typing import Final

from data.field.draft import Draft, Drafts, Issue, TrackDraft
from data.problems import Problem

SENTENCE: Final = re.compile(
    r"[$!](?P<talker>[A-Z][A-Z0-9])(?P<type>[A-Z]{3}),(?P<body>[^*\r\n]*)"
    r"(?:\*(?P<sum>[0-9A-Fa-f]{2}))?\s*$"
)
SHAPE: Final = re.compile(r"[$!][A-Z][A-Z0-9][A-Z]{3},")
"""What detection looks for at the start of a line (or after a logger's timestamp)."""

_USED: Final = frozenset({"GGA", "RMC", "GSA", "ZDA"})
_MIN_FIELDS: Final = {"GGA": 9, "RMC": 9, "GSA": 17, "ZDA": 4}
_RECENT: Final = 8
"""Fixes a sentence may still join: GGA and RMC of one epoch arrive close together."""


@dataclass
class _Fix:
    line: int
    element: str
    time_text: str
    seconds: float | None = None
    day: date | None = None
    x: float | None = None
    y: float | None = None
    draft: Draft | None = None
    invalid: str | None = None
    issues: list[Issue] = field(default_factory=list)
    talkers: set[str] = field(default_factory=set)
    properties: dict[str, object] = field(default_factory=dict)
    elevation: str | None = None
    hdop: str | None = None
    pdop: str | None = None
    vdop: str | None = None
    satellites: str | None = None


def _number(text: str) -> object:
    """A property value: float when it reads as one, else the text as sent."""
    try:
        return float(text)
    except ValueError:
        return text


def checksum(body: str) -> str:
    """The two hex digits NMEA puts after '*': XOR of every character between '$' and '*'."""
    return f"{reduce(xor, body.encode('ascii', 'replace'), 0):02X}"


def _time_of_day(text: str, issues: list[Issue]) -> float | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d{2})(\d{2})(\d{2}(?:\.\d+)?)", text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59 or float(match[3]) >= 61:
        issues.append(Issue("UTC time is not hhmmss.ss", "time", text))
        return None
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def _angle(
    value: str, hemisphere: str, degree_digits: int, name: str, issues: list[Issue]
) -> float | None:
    """ddmm.mmmm / dddmm.mmmm plus N/S/E/W to signed decimal degrees."""
    if not value:
        return None
    match = re.fullmatch(rf"(\d{{{degree_digits}}})(\d{{2}}(?:\.\d*)?)", value)
    if match is None or float(match[2]) >= 60:
        issues.append(
            Issue(f"{name} is not {'d' * degree_digits}mm.mmmm", name, value, coordinate=True)
        )
        return float("nan")
    degrees = int(match[1]) + float(match[2]) / 60.0
    if hemisphere in ("S", "W"):
        return -degrees
    if hemisphere not in ("N", "E"):
        issues.append(
            Issue(
                f"{name} hemisphere {hemisphere!r} is not N/S/E/W",
                name,
                hemisphere,
                coordinate=True,
            )
        )
        return float("nan")
    return degrees


class _Reader:
    def __init__(self) -> None:
        self.drafts = Drafts("nmea")
        self.fixes: list[_Fix] = []
        self.recent: dict[str, _Fix] = {}
        self.ignored: Counter[str] = Counter()
        self.no_position = 0
        self.zda_days: list[tuple[float, date]] = []

    def refuse(self, line: int, kind: str, reason: str, value: str | None = None) -> None:
        self.drafts.refused.append(Problem(f"line {line} ({kind}): {reason}", line, kind, value))

    def sentence(self, line: int, text: str) -> None:
        start = min((i for i in (text.find("$"), text.find("!")) if i >= 0), default=-1)
        match = SENTENCE.match(text, start) if start >= 0 else None
        if match is None:
            if text.lstrip().startswith("#"):
                self.ignored["comment line"] += 1
            else:
                self.refuse(line, "line", "not an NMEA sentence", text.strip()[:80])
            return
        talker, kind, body, given = match["talker"], match["type"], match["body"], match["sum"]
        name = talker + kind
        if given is None:
            self.refuse(line, name, "no checksum (*hh): the sentence cannot be verified")
            return
        expected = checksum(f"{name},{body}")
        if given.upper() != expected:
            self.refuse(
                line,
                name,
                f"bad checksum: sentence says {given.upper()}, content gives {expected} "
                "(corrupted in transmission)",
                text.strip()[:80],
            )
            return
        if kind not in _USED:
            self.ignored[kind] += 1
            return
        fields = body.split(",")
        if len(fields) < _MIN_FIELDS[kind]:
            self.refuse(
                line, name, f"{len(fields)} fields, {kind} has at least {_MIN_FIELDS[kind]}"
            )
            return
        getattr(self, f"_{kind.lower()}")(line, talker, name, fields)

    def _fix(self, line: int, name: str, time_text: str) -> _Fix:
        fix = self.recent.get(time_text) if time_text else None
        if fix is None:
            fix = _Fix(line, name, time_text)
            fix.seconds = _time_of_day(time_text, fix.issues)
            self.fixes.append(fix)
            if time_text:
                self.recent[time_text] = fix
                if len(self.recent) > _RECENT:
                    del self.recent[next(iter(self.recent))]
        return fix

    def _position(self, fix: _Fix, fields: list[str], at: int) -> None:
        y = _angle(fields[at], fields[at + 1], 2, "latitude", fix.issues)
        x = _angle(fields[at + 2], fields[at + 3], 3, "longitude", fix.issues)
        if fix.x is None and x is not None and y is not None:
            fix.x, fix.y = x, y

    def _gga(self, line: int, talker: str, name: str, fields: list[str]) -> None:
        fix = self._fix(line, name, fields[0])
        fix.talkers.add(talker)
        self._position(fix, fields, 1)
        quality = fields[5]
        fix.properties["fix_quality"] = int(quality) if quality.isdigit() else quality
        if quality == "0":
            fix.invalid = "GGA fix quality 0"
        fix.satellites = fields[6] or None
        fix.hdop = fields[7] or None
        fix.elevation = fields[8] or None
        if len(fields) > 10 and fields[10]:
            fix.properties["geoid_separation_m"] = _number(fields[10])

    def _rmc(self, line: int, talker: str, name: str, fields: list[str]) -> None:
        fix = self._fix(line, name, fields[0])
        fix.talkers.add(talker)
        self._position(fix, fields, 2)
        if fields[1] == "V":
            fix.invalid = "RMC status V (void)"
        if len(fields) > 11 and fields[11] == "N":
            fix.invalid = fix.invalid or "RMC mode N (not valid)"
        if fields[6]:
            fix.properties["speed_knots"] = _number(fields[6])
        if fields[7]:
            fix.properties["course_deg"] = _number(fields[7])
        text = fields[8]
        match = re.fullmatch(r"(\d{2})(\d{2})(\d{2})", text)
        try:
            if match is None:
                raise ValueError(text)
            year = int(match[3])
            fix.day = date(2000 + year if year < 80 else 1900 + year, int(match[2]), int(match[1]))
        except ValueError:
            fix.issues.append(Issue("RMC date is not ddmmyy", "date", text))

    def _gsa(self, line: int, talker: str, name: str, fields: list[str]) -> None:
        if not self.fixes:
            return
        fix = self.fixes[-1]
        fix.pdop = fields[14] or fix.pdop
        fix.vdop = fields[16].partition("*")[0] or fix.vdop
        fix.hdop = fix.hdop or fields[15] or None

    def _zda(self, line: int, talker: str, name: str, fields: list[str]) -> None:
        issues: list[Issue] = []
        seconds = _time_of_day(fields[0], issues)
        try:
            day = date(int(fields[3]), int(fields[2]), int(fields[1]))
        except ValueError:
            self.refuse(line, name, "ZDA date is not dd,mm,yyyy", ",".join(fields[1:4]))
            return
        if seconds is not None and not issues:
            self.zda_days.append((seconds, day))
            fix = self.recent.get(fields[0])
            if fix is not None and fix.day is None:
                fix.day = day


def _fill_dates(fixes: list[_Fix]) -> None:
    """Give undated fixes (GGA-only epochs) the date of their dated neighbours.

    Forward from the last dated fix, and backward before the first one; a time of day more
    than 12 h below (above) the neighbour's means midnight was crossed.
    """
    last: tuple[float, date] | None = None
    for fix in fixes:
        if fix.seconds is None:
            continue
        if fix.day is not None:
            last = (fix.seconds, fix.day)
        elif last is not None:
            day = last[1] + timedelta(days=1) if fix.seconds + 43200 < last[0] else last[1]
            fix.day = day
            last = (fix.seconds, day)
    following: tuple[float, date] | None = None
    for fix in reversed(fixes):
        if fix.seconds is None:
            continue
        if fix.day is not None:
            following = (fix.seconds, fix.day)
        elif following is not None:
            day = (
                following[1] - timedelta(days=1)
                if fix.seconds > following[0] + 43200
                else following[1]
            )
            fix.day = day
            following = (fix.seconds, day)


def read_nmea(raw: bytes, source: str) -> Drafts:
    """The log's fixes as one track; bad sentences refused by line number."""
    reader = _Reader()
    text = raw.decode("ascii", errors="replace")
    for number_, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            reader.sentence(number_, line)
    if reader.zda_days and not any(f.day for f in reader.fixes):
        seconds, day = reader.zda_days[0]
        first = next((f for f in reader.fixes if f.seconds is not None), None)
        if first is not None and first.seconds is not None:
            first.day = day - timedelta(days=1) if first.seconds > seconds + 43200 else day
    _fill_dates(reader.fixes)
    drafts = reader.drafts
    vertices: list[Draft] = []
    undated = 0
    for fix in reader.fixes:
        if (fix.x is None or fix.y is None) and not fix.issues:
            reader.no_position += 1
            continue
        draft = Draft(
            fix.line,
            float("nan") if fix.x is None else fix.x,
            float("nan") if fix.y is None else fix.y,
            fix.element,
            fix.line,
        )
        draft.elevation, draft.hdop, draft.pdop = fix.elevation, fix.hdop, fix.pdop
        draft.vdop, draft.satellites = fix.vdop, fix.satellites
        draft.properties = {"talker": "/".join(sorted(fix.talkers)), **fix.properties}
        draft.issues = fix.issues or None
        if fix.invalid and not fix.issues:
            drafts.refused.append(
                Problem(
                    f"line {fix.line} ({fix.element}): receiver reported no valid fix "
                    f"({fix.invalid}): the position is stale or estimated",
                    fix.line,
                    fix.element,
                )
            )
            continue
        if fix.seconds is not None and fix.day is not None:
            draft.time = datetime.combine(fix.day, time(tzinfo=UTC)) + timedelta(
                seconds=fix.seconds
            )
        elif fix.seconds is not None:
            undated += 1
        vertices.append(draft)
    if vertices:
        drafts.tracks.append(
            TrackDraft(
                vertices[0].row, "track", None, vertices, {"source": "NMEA 0183"}, "NMEA log"
            )
        )
    if reader.no_position:
        drafts.warnings.append(
            Problem(f"{reader.no_position} epoch(s) without a position (no fix yet)")
        )
    if undated:
        drafts.warnings.append(
            Problem(f"{undated} fix(es) have a time but no date (no RMC or ZDA): time left empty")
        )
    for kind, count in sorted(reader.ignored.items()):
        what = f"{kind}(s)" if kind == "comment line" else f"{kind} sentence(s)"
        drafts.warnings.append(
            Problem(f"{count} {what} ignored (only GGA, RMC, GSA, ZDA are read)")
        )
    return drafts
