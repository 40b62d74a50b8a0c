"""Query parameters of OGC API Features, parsed strictly: a bad value is a 400 naming it.

bbox and datetime follow OGC API Features Part 1 (7.15.3, 7.15.4); sortby the
`+name,-name` form of OGC API Records/Features Part 5; properties a comma list.
Every name is checked against the layer's published properties, so nothing a
client sends reaches SQL except as a bound value. The bbox as a row filter is in
gis_api/ogc/bbox.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, and_

from gis_api.problems import ApiProblem

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100


def reject_unknown(params: Iterable[str], allowed: Iterable[str]) -> None:
    """400 naming every query parameter this endpoint does not know."""
    known = set(allowed)
    unknown = sorted({p for p in params if p not in known})
    if unknown:
        raise ApiProblem(
            400,
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"this endpoint accepts: {', '.join(sorted(known))}",
        )


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Four numbers (or six with heights, which are ignored) in the bbox-crs axis order."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise ApiProblem(400, f"bbox must have 4 or 6 comma-separated numbers, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise ApiProblem(400, f"bbox has a value that is not a number: {text!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise ApiProblem(400, f"bbox values must be finite numbers: {text!r}")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    x1, y1, x2, y2 = values
    if x1 > x2 or y1 > y2:
        raise ApiProblem(400, f"bbox lower corner must not exceed the upper corner: {text!r}")
    return x1, y1, x2, y2


def _instant(text: str, end: bool) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return (
                moment.replace(hour=23, minute=59, second=59, microsecond=999999) if end else moment
            )
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiProblem(
            400, f"datetime {text!r} is not RFC 3339 (e.g. 2026-11-25T08:00:00Z or 2026-11-25)"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def datetime_clause(column: ColumnElement[datetime], text: str) -> ColumnElement[bool]:
    """An instant, a closed interval or a half-bounded one ('..')."""
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, finish = _instant(start_text, False), _instant(end_text, True)
        if start is None and finish is None:
            raise ApiProblem(400, "datetime '../..' bounds nothing")
        if start and finish and start > finish:
            raise ApiProblem(400, f"datetime interval {text!r} ends before it starts")
        clauses = []
        if start is not None:
            clauses.append(column >= start)
        if finish is not None:
            clauses.append(column <= finish)
        return and_(*clauses)
    if len(text) == 10:
        first, last = _instant(text, False), _instant(text, True)
        return and_(column >= first, column <= last)
    moment = _instant(text, False)
    if moment is None:
        raise ApiProblem(400, "datetime '..' bounds nothing")
    return column == moment


def parse_names(text: str, what: str, allowed: Sequence[str]) -> list[str]:
    """A comma list of published names; 400 naming the unknown ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ApiProblem(400, f"unknown {what}: {', '.join(unknown)}; known: {', '.join(allowed)}")
    return names


def parse_sortby(text: str, allowed: Sequence[str]) -> list[tuple[str, bool]]:
    """'+name,-code' or 'name' into (property, descending) pairs."""
    order: list[tuple[str, bool]] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        descending = raw.startswith("-")
        name = raw.lstrip("+-").strip()
        # 'name:D' / 'name DESC' spellings of some clients.
        for suffix, desc in ((":D", True), (":A", False), (" DESC", True), (" ASC", False)):
            if name.upper().endswith(suffix):
                name, descending = name[: -len(suffix)].strip(), desc
        parse_names(name, "sortby property", allowed)
        order.append((name, descending))
    return order


def parse_limit(text: str | None) -> int:
    """1..10,000, default 100."""
    if text is None:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError as exc:
        raise ApiProblem(400, f"limit must be an integer 1..{MAX_LIMIT}, got {text!r}") from exc
    if not 1 <= value <= MAX_LIMIT:
        raise ApiProblem(400, f"limit must be 1..{MAX_LIMIT}, got {value}")
    return value


def parse_offset(text: str | None) -> int:
    """0 or more."""
    if text is None:
        return 0
    try:
        value = int(text)
    except ValueError as exc:
        raise ApiProblem(400, f"offset must be a non-negative integer, got {text!r}") from exc
    if value < 0:
        raise ApiProblem(400, f"offset must be a non-negative integer, got {value}")
    return value
