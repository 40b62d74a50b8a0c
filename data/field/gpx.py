"""GPX 1.0 and 1.1: waypoints, routes and tracks from GPS units and phone apps.

Elements are matched by local name, so GPX 1.0, 1.1 and files without the namespace read
alike. A waypoint's observation kind is its `type`, else its `sym` (Garmin units only let
the user pick a symbol). Extensions are flattened into properties by leaf name (Garmin
TrackPointExtension hr/cad/atemp, Apple's hAcc/vAcc/speed/course, OsmAnd, ...); a
horizontal accuracy among them becomes `accuracy_m`. GPX times are UTC by specification,
so a time without a zone is read as UTC (and counted in a warning).

The point loop is the hot path of a 100,000-point upload. It is compiled
(`_gpx_points.pyx`, lxml's C API: 1.7 -> 0.8 s for such a file, half of it the parse) and
only copies element text into the draft; numbers and times are converted for all points at
once in `validate`. Children it does not know come back to `_other` here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from lxml import etree

from data.field import _gpx_points, safexml
from data.field.draft import Draft, Drafts, Issue, TrackDraft, scalar, text_or_none
from data.field.model import InvalidUpload
from data.problems import Problem

NAMESPACES: Final = {
    "http://www.topografix.com/GPX/1/0": "1.0",
    "http://www.topografix.com/GPX/1/1": "1.1",
}
# Standard GPX point elements without a slot of their own: kept as properties, numbers
# as numbers.
_NUMERIC: Final = frozenset({"magvar", "geoidheight", "ageofdgpsdata", "dgpsid", "course", "speed"})
# Extension leaves that are a horizontal accuracy in metres.
_ACCURACY: Final = frozenset({"hacc", "horizontal_accuracy", "accuracy", "haccuracy"})

_local_cache: dict[str, str] = {}


def _local(tag: object) -> str:
    """Local name of a tag, cached: a file repeats a dozen tags 100,000 times."""
    key = str(tag)
    name = _local_cache.get(key)
    if name is None:
        name = _local_cache[key] = safexml.local_name(key)
    return name


def _flatten(element: etree._Element, into: dict[str, object]) -> None:
    """Leaves of an <extensions> tree by local name; repeated leaves become lists."""
    for child in element.iterchildren():
        if len(child):
            _flatten(child, into)
            continue
        key = _local(child.tag)
        value = scalar(child.text)
        if value is None and child.attrib:
            value = dict(child.attrib)
        if key in into:
            previous = into[key]
            into[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            into[key] = value


def _text(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


def _other(draft: Draft, child: etree._Element, name: str) -> None:
    """A point's child other than the common ones the C loop reads (`_gpx_points`)."""
    if name == "extensions":
        _extensions(draft, child)
    elif name == "link":
        draft.properties.setdefault("link", child.get("href"))
    elif name in _NUMERIC:
        draft.properties[name] = scalar(child.text)
    else:
        draft.properties[name] = _text(child.text)


def _extensions(draft: Draft, element: etree._Element) -> None:
    found: dict[str, object] = {}
    _flatten(element, found)
    for key, value in found.items():
        draft.properties[key] = value
        if draft.accuracy is None and key.lower() in _ACCURACY:
            draft.accuracy = value


def _line(element: etree._Element, row: int, kind: str, creator: str | None) -> TrackDraft:
    """A trk's or rte's own fields (not its points) as a TrackDraft."""
    track = TrackDraft(row, "route" if kind == "rte" else "track", element=kind)
    track.line = element.sourceline
    for child in element:
        name = _local(child.tag)
        if name in ("trkseg", "rtept"):
            continue
        if name == "name":
            track.name = text_or_none(child.text)
        elif name == "extensions":
            _flatten(child, track.properties)
        elif name == "link":
            track.properties.setdefault("link", child.get("href"))
        else:
            track.properties[name] = scalar(child.text)
    if creator:
        track.properties.setdefault("creator", creator)
    return track


def _lines(row: int, element: etree._Element, creator: str | None) -> list[TrackDraft]:
    """A rte as one line; a trk as one line per trkseg (a gap between segments is a signal
    loss, not a path walked), or as a pointless line noted as an issue when it has none."""
    if _local(element.tag) == "rte":
        route = _line(element, row, "rte", creator)
        route.vertices = _gpx_points.points(element, "rtept", row, "rtept", creator, Draft, _other)
        return [route]
    template = _line(element, row, "trk", creator)
    segments = [s for s in element if _local(s.tag) == "trkseg"]
    if not segments:
        template.issues.append(Issue("trk has no trkseg: no points"))
        return [template]
    return [
        TrackDraft(
            row,
            "track",
            template.name,
            _gpx_points.points(segment, "trkpt", row, "trkpt", creator, Draft, _other),
            {**template.properties, "segment": number},
            "trkseg" if len(segments) > 1 else "trk",
            segment.sourceline,
        )
        for number, segment in enumerate(segments, start=1)
    ]


def read_gpx(raw: bytes, source: str, chunk_size: int) -> Iterator[Drafts]:
    """Waypoints as points, each trkseg and rte as a FieldTrack; rows count wpt/rte/trk.

    Yields the file in chunks of about `chunk_size` points and vertices (a route or track is
    never split), in file order, so the caller can store one chunk while this builds the
    next. The whole document is parsed (and so checked) before the first chunk.
    """
    root = safexml.parse(raw, source)
    if _local(root.tag) != "gpx":
        raise InvalidUpload(source, f"root element is <{_local(root.tag)}>, not <gpx>")
    drafts = Drafts("gpx")
    namespace = str(root.tag)[1:].partition("}")[0] if str(root.tag).startswith("{") else ""
    if namespace and namespace not in NAMESPACES:
        drafts.warnings.append(
            Problem(f"unknown GPX namespace {namespace!r}: read as GPX 1.1 by element names")
        )
    creator = text_or_none(root.get("creator"))
    features = _gpx_points.Features(root, creator, Draft, _other)
    vertices = 0
    while batch := features.batch(chunk_size):
        for item in batch:
            if isinstance(item, Draft):
                drafts.points.append(item)
            else:
                lines = _lines(*item, creator)
                vertices += sum(len(line.vertices) for line in lines)
                drafts.tracks += lines
            if len(drafts.points) + vertices >= chunk_size:
                yield drafts
                drafts = Drafts("gpx")
                vertices = 0
    yield drafts
