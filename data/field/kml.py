"""KML (Google Earth, Ovital 奥维, 两步路 and most Chinese outdoor apps): placemarks and tracks.

Every Placemark, however deep in Documents and Folders, is one row. Its Points become
points; its LineStrings become lines and its gx:Track / gx:MultiTrack timed tracks (one
<when> per <gx:coord>, per-vertex gx:SimpleArrayData such as heart rate kept as vertex
properties). Name, description, TimeStamp and ExtendedData (Data and SchemaData) are
attributes of the placemark's geometries, with ExtendedData keys such as kind/类型, time,
accuracy read as in CSV. Polygons and models are refused by row, never skipped.
"""

from __future__ import annotations

from collections import Counter
from datetime import tzinfo
from typing import Final

from lxml import etree

from data.field import safexml
from data.field.draft import (
    Draft,
    Drafts,
    Issue,
    TrackDraft,
    apply_attributes,
    apply_track_attributes,
    text_or_none,
)
from data.field.model import Format, InvalidUpload
from data.problems import Problem

_CONTAINERS: Final = frozenset({"Document", "Folder"})
_IGNORED: Final = frozenset({"NetworkLink", "GroundOverlay", "ScreenOverlay", "PhotoOverlay"})
_REFUSED_GEOMETRY: Final = frozenset({"Polygon", "LinearRing", "Model"})
_GEOMETRY: Final = frozenset(
    {"Point", "LineString", "Track", "MultiTrack", "MultiGeometry"} | _REFUSED_GEOMETRY
)


def _local(element: etree._Element) -> str:
    return safexml.local_name(str(element.tag))


def _child(element: etree._Element, name: str) -> etree._Element | None:
    for child in element:
        if _local(child) == name:
            return child
    return None


def _child_text(element: etree._Element, name: str) -> str | None:
    found = _child(element, name)
    return None if found is None else text_or_none(found.text)


def _extended_data(placemark: etree._Element) -> dict[str, object]:
    """<Data name><value> and <SchemaData><SimpleData name> as one flat mapping."""
    values: dict[str, object] = {}
    extended = _child(placemark, "ExtendedData")
    if extended is None:
        return values
    for item in extended.iter():
        name = _local(item)
        if name == "Data" and item.get("name"):
            values[str(item.get("name"))] = _child_text(item, "value")
        elif name == "SimpleData" and item.get("name"):
            values[str(item.get("name"))] = text_or_none(item.text)
    return values


class _Reader:
    def __init__(self, local_tz: tzinfo) -> None:
        self.drafts = Drafts("kml", naive_tz=local_tz, naive_why="KML time without offset")
        self.row = 0
        self.ignored: Counter[str] = Counter()

    def walk(self, element: etree._Element, folders: tuple[str, ...]) -> None:
        for child in element:
            name = _local(child)
            if name in _CONTAINERS:
                title = _child_text(child, "name")
                self.walk(child, (*folders, title) if title else folders)
            elif name == "Placemark":
                self.row += 1
                self.placemark(child, folders)
            elif name in _IGNORED:
                self.ignored[name] += 1

    def placemark(self, element: etree._Element, folders: tuple[str, ...]) -> None:
        row = self.row
        common: dict[str, object] = {}
        for key in ("name", "description"):
            value = _child_text(element, key)
            if value is not None:
                common[key] = value
        when = _timestamp(element)
        if when is not None:
            common["time"] = when
        common.update(_extended_data(element))
        style = _child_text(element, "styleUrl")
        if style:
            common.setdefault("styleUrl", style)
        if folders:
            common.setdefault("folder", "/".join(folders))
        geometries = [g for g in element if _local(g) in _GEOMETRY]
        if not geometries:
            self.drafts.refused.append(
                Problem(f"Placemark at line {element.sourceline} has no geometry", row)
            )
        for geometry in geometries:
            self.geometry(geometry, row, common)

    def geometry(self, element: etree._Element, row: int, common: dict[str, object]) -> None:
        name = _local(element)
        if name == "Point":
            self.point(element, row, common)
        elif name == "LineString":
            self.line_string(element, row, common)
        elif name == "Track":
            self.track(element, row, common)
        elif name in ("MultiGeometry", "MultiTrack"):
            for part in element:
                if _local(part) in _GEOMETRY:
                    self.geometry(part, row, common)
        else:
            self.drafts.refused.append(
                Problem(
                    f"{name} at line {element.sourceline}: only points and lines are field "
                    "observations",
                    row,
                    name,
                )
            )

    def point(self, element: etree._Element, row: int, common: dict[str, object]) -> None:
        text = _child_text(element, "coordinates") or ""
        first = text.split()[0] if text.split() else ""
        draft = _vertex(first, row, "Point", element.sourceline)
        apply_attributes(draft, common)
        self.drafts.points.append(draft)

    def _track(
        self, kind: str, row: int, element: etree._Element, common: dict[str, object]
    ) -> TrackDraft:
        track = TrackDraft(row, "track" if kind == "gx:Track" else "line", element=kind)
        track.line = element.sourceline
        apply_track_attributes(track, common)
        return track

    def line_string(self, element: etree._Element, row: int, common: dict[str, object]) -> None:
        track = self._track("LineString", row, element, common)
        text = _child_text(element, "coordinates") or ""
        line = element.sourceline
        track.vertices = [
            _vertex(t, row, f"LineString vertex {k}", line)
            for k, t in enumerate(text.split(), start=1)
        ]
        self.drafts.tracks.append(track)

    def track(self, element: etree._Element, row: int, common: dict[str, object]) -> None:
        track = self._track("gx:Track", row, element, common)
        whens = [c for c in element if _local(c) == "when"]
        coords = [c for c in element if _local(c) == "coord"]
        if whens and len(whens) != len(coords):
            track.issues.append(
                Issue(f"gx:Track has {len(whens)} <when> but {len(coords)} <gx:coord>")
            )
        arrays = _simple_arrays(element)
        for k, coord in enumerate(coords):
            parts = (coord.text or "").split()
            vertex = Draft(
                row,
                parts[0] if parts else None,
                parts[1] if len(parts) > 1 else None,
                f"gx:coord {k + 1}",
                coord.sourceline,
            )
            if len(parts) > 2:
                vertex.elevation = parts[2]
            if k < len(whens):
                vertex.time = text_or_none(whens[k].text)
            for key, values in arrays.items():
                if k < len(values) and values[k] is not None:
                    vertex.properties[key] = values[k]
            track.vertices.append(vertex)
        self.drafts.tracks.append(track)


def _timestamp(placemark: etree._Element) -> str | None:
    stamp = _child(placemark, "TimeStamp")
    if stamp is not None:
        return _child_text(stamp, "when")
    span = _child(placemark, "TimeSpan")
    if span is not None:
        return _child_text(span, "begin")
    return None


def _simple_arrays(track: etree._Element) -> dict[str, list[object]]:
    """gx:SimpleArrayData name=... of a gx:Track: one value per vertex."""
    arrays: dict[str, list[object]] = {}
    extended = _child(track, "ExtendedData")
    if extended is None:
        return arrays
    for item in extended.iter():
        if _local(item) == "SimpleArrayData" and item.get("name"):
            values: list[object] = []
            for value in item:
                if _local(value) == "value":
                    text = text_or_none(value.text)
                    try:
                        values.append(float(text) if text is not None else None)
                    except ValueError:
                        values.append(text)
            arrays[str(item.get("name"))] = values
    return arrays


def _vertex(text: str, row: int, element: str, line: int | None) -> Draft:
    """A Draft from one KML coordinate tuple 'lon,lat[,alt]'."""
    parts = text.split(",")
    draft = Draft(
        row,
        parts[0] if parts[0] else None,
        parts[1] if len(parts) > 1 else None,
        element,
        line,
    )
    if len(parts) > 2 and parts[2].strip():
        draft.elevation = parts[2]
    return draft


def read_kml(raw: bytes, source: str, local_tz: tzinfo, fmt: Format = "kml") -> Drafts:
    """Placemarks of a KML document (also the KML inside a KMZ: `fmt='kmz'`)."""
    root = safexml.parse(raw, source)
    if _local(root) != "kml":
        raise InvalidUpload(source, f"root element is <{_local(root)}>, not <kml>")
    reader = _Reader(local_tz)
    reader.drafts.format = fmt
    reader.walk(root, ())
    drafts = reader.drafts
    for name, count in sorted(reader.ignored.items()):
        drafts.warnings.append(Problem(f"{count} {name}(s) not imported (not observations)"))
    return drafts
