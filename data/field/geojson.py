"""GeoJSON (RFC 7946, and the 2008 draft's `crs` member): features or a bare geometry.

Points and MultiPoints become points (a MultiPoint's positions share its row and
properties); LineStrings and MultiLineStrings become lines, or timed tracks when the
feature carries per-vertex times the way togeojson writes them (`coordTimes`, or `times`).
Polygons are refused by row. Non-standard NaN/Infinity literals are parsed so that the
point can be refused with that reason instead of the whole file failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import tzinfo
from typing import Final

from data.crs import UnknownCrs, parse_crs
from data.csv_table import decode
from data.field.draft import (
    Draft,
    Drafts,
    Issue,
    TrackDraft,
    apply_attributes,
    apply_track_attributes,
)
from data.field.model import InvalidUpload
from data.problems import InvalidImport, Problem

_GEOMETRIES: Final = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)
_TIME_ARRAYS: Final = ("coordTimes", "times")


def _position(value: object, issues: list[Issue]) -> tuple[float, float, float | None]:
    """(x, y, z) of a GeoJSON position; NaNs plus an Issue when it is not one."""
    nan = float("nan")
    if not isinstance(value, list) or len(value) < 2:
        issues.append(
            Issue(
                "position is not [longitude, latitude]",
                "coordinates",
                json.dumps(value)[:80],
                coordinate=True,
            )
        )
        return nan, nan, None
    numbers: list[float] = []
    for item in value[:3]:
        if isinstance(item, bool) or not isinstance(item, int | float):
            issues.append(
                Issue(
                    "coordinate is not a number",
                    "coordinates",
                    json.dumps(item)[:80],
                    coordinate=True,
                )
            )
            return nan, nan, None
        numbers.append(float(item))
    return numbers[0], numbers[1], numbers[2] if len(numbers) > 2 else None


class _Reader:
    def __init__(self, local_tz: tzinfo) -> None:
        self.drafts = Drafts(
            "geojson", geographic_only=False, naive_tz=local_tz, naive_why="time without offset"
        )

    def feature(self, row: int, feature: object) -> None:
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            kind = feature.get("type") if isinstance(feature, dict) else type(feature).__name__
            self.drafts.refused.append(Problem(f"feature {row} is not a Feature ({kind})", row))
            return
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            self.drafts.refused.append(Problem("properties is not an object", row, "properties"))
            return
        properties = dict(properties)
        if feature.get("id") is not None:
            properties.setdefault("id", feature["id"])
        geometry = feature.get("geometry")
        if geometry is None:
            self.drafts.refused.append(Problem(f"feature {row} has no geometry", row))
            return
        self.geometry(row, geometry, properties)

    def geometry(self, row: int, geometry: object, properties: dict[str, object]) -> None:
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or kind not in _GEOMETRIES:
            self.drafts.refused.append(
                Problem(f"feature {row}: not a GeoJSON geometry ({kind!r})", row, "geometry")
            )
            return
        coordinates = geometry.get("coordinates")
        if kind == "GeometryCollection":
            for part in geometry.get("geometries") or []:
                self.geometry(row, part, properties)
        elif kind == "Point":
            self.point(row, coordinates, properties, "Point")
        elif kind == "MultiPoint" and isinstance(coordinates, list):
            for k, position in enumerate(coordinates, start=1):
                self.point(row, position, properties, f"MultiPoint position {k}")
        elif kind == "LineString":
            self.line(row, coordinates, properties, _times(properties, None), None)
        elif kind == "MultiLineString" and isinstance(coordinates, list):
            for k, part in enumerate(coordinates, start=1):
                self.line(row, part, properties, _times(properties, k - 1), k)
        elif kind in ("Polygon", "MultiPolygon"):
            self.drafts.refused.append(
                Problem(
                    f"feature {row}: {kind} is not a field observation (points and lines only)",
                    row,
                    "geometry",
                )
            )
        else:
            self.drafts.refused.append(
                Problem(f"feature {row}: {kind} coordinates are not a list", row, "geometry")
            )

    def point(
        self, row: int, position: object, properties: Mapping[str, object], label: str
    ) -> None:
        issues: list[Issue] = []
        x, y, z = _position(position, issues)
        draft = Draft(row, x, y, label)
        draft.elevation, draft.issues = z, issues or None
        apply_attributes(draft, properties)
        self.drafts.points.append(draft)

    def line(
        self,
        row: int,
        coordinates: object,
        properties: dict[str, object],
        times: list[object] | None,
        part: int | None,
    ) -> None:
        timed = times is not None
        track = TrackDraft(row, "track" if timed else "line", element="LineString")
        rest = {k: v for k, v in properties.items() if k not in _TIME_ARRAYS}
        apply_track_attributes(track, rest)
        if part is not None:
            track.properties["part"] = part
        if not isinstance(coordinates, list):
            track.issues.append(Issue("LineString coordinates are not a list", "coordinates"))
            self.drafts.tracks.append(track)
            return
        if times is not None and len(times) != len(coordinates):
            track.issues.append(
                Issue(f"{len(times)} coordTimes for {len(coordinates)} positions", "coordTimes")
            )
        for k, position in enumerate(coordinates):
            issues: list[Issue] = []
            x, y, z = _position(position, issues)
            vertex = Draft(row, x, y, f"LineString position {k + 1}")
            vertex.elevation, vertex.issues = z, issues or None
            if times is not None and k < len(times):
                vertex.time = times[k]
            track.vertices.append(vertex)
        self.drafts.tracks.append(track)


def _times(properties: Mapping[str, object], part: int | None) -> list[object] | None:
    for key in _TIME_ARRAYS:
        value = properties.get(key)
        if isinstance(value, list):
            if part is None:
                return value
            if part < len(value) and isinstance(value[part], list):
                inner: list[object] = value[part]
                return inner
    return None


def _file_crs(doc: dict[str, object], drafts: Drafts, source: str) -> None:
    member = doc.get("crs")
    if not isinstance(member, dict):
        return
    props = member.get("properties")
    name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str):
        return
    try:
        drafts.file_crs = parse_crs(name)
    except UnknownCrs as exc:
        raise InvalidUpload(source, f"GeoJSON crs member: {exc}") from exc


def read_geojson(raw: bytes, source: str, local_tz: tzinfo) -> Drafts:
    """Features of a FeatureCollection, one Feature, or one bare geometry (row 1)."""
    try:
        text = decode(raw, source)
    except InvalidImport as exc:
        raise InvalidUpload(source, exc.problems) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidUpload(
            source,
            f"not valid JSON at line {exc.lineno}, column {exc.colno} (truncated?): {exc.msg}",
        ) from exc
    kind = doc.get("type") if isinstance(doc, dict) else None
    reader = _Reader(local_tz)
    if kind == "FeatureCollection":
        assert isinstance(doc, dict)
        features = doc.get("features")
        if not isinstance(features, list):
            raise InvalidUpload(source, "FeatureCollection without a features array")
        for row, feature in enumerate(features, start=1):
            reader.feature(row, feature)
    elif kind == "Feature":
        reader.feature(1, doc)
    elif kind in _GEOMETRIES:
        assert isinstance(doc, dict)
        reader.geometry(1, doc, {})
    else:
        raise InvalidUpload(
            source,
            f"JSON is not GeoJSON: top-level type {kind!r} (expected FeatureCollection, "
            "Feature or a geometry)",
        )
    assert isinstance(doc, dict)
    _file_crs(doc, reader.drafts, source)
    return reader.drafts
