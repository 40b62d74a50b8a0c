"""Geometry checks for imports: type, coordinates, CRS, validity.

Everything is stored in EPSG:4326; a declared CRS (EPSG code, CGCS2000
Gauss-Kruger, GCJ-02, BD-09) is converted on the way in.  Coordinates are
checked before and after conversion so that the two commonest field mistakes
get their own message: latitude and longitude swapped, and projected metres
declared as degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from data.crs import SourceCrs
from data.problems import Problem, ProblemList
from layers.catalog import GeometryKind

# China's extent with a margin (Zengmu Ansha 3.9N .. Mohe 53.6N, Pamir 73.5E .. Fuyuan 135.1E).
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
REPAIR_AREA_TOLERANCE = 0.01
"""A repair that changes the area by more than 1 % is not safe: refuse instead."""

Geoms = NDArray[np.object_]

_ACCEPTED: dict[GeometryKind, tuple[str, ...]] = {
    GeometryKind.POINT: ("Point", "MultiPoint"),
    GeometryKind.LINESTRING: ("LineString", "MultiLineString"),
    GeometryKind.MULTIPOLYGON: ("Polygon", "MultiPolygon"),
}
_NEEDED = {
    GeometryKind.POINT: "Point",
    GeometryKind.LINESTRING: "LineString",
    GeometryKind.MULTIPOLYGON: "Polygon or MultiPolygon",
}


@dataclass(frozen=True)
class CheckedGeometries:
    """WGS-84 geometries of the storage type, and the repairs made."""

    geoms: Geoms
    repaired: tuple[Problem, ...]


def _in_box(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    lon: tuple[float, float],
    lat: tuple[float, float],
) -> NDArray[np.bool_]:
    return (x >= lon[0]) & (x <= lon[1]) & (y >= lat[0]) & (y <= lat[1])


def _coerce_type(geom: shapely.Geometry, kind: GeometryKind) -> shapely.Geometry | None:
    """The geometry as the storage type, or None when it cannot be without loss."""
    name = geom.geom_type
    if name not in _ACCEPTED[kind]:
        return None
    if kind is GeometryKind.POINT:
        if name == "MultiPoint":
            return geom.geoms[0] if len(geom.geoms) == 1 else None
        return geom
    if kind is GeometryKind.LINESTRING:
        if name == "MultiLineString":
            merged = shapely.line_merge(geom)
            return merged if merged.geom_type == "LineString" else None
        return geom
    return geom if name == "MultiPolygon" else shapely.multipolygons([geom])


def check_geometries(
    geoms: Geoms, kind: GeometryKind, crs: SourceCrs, problems: ProblemList
) -> CheckedGeometries:
    """Convert to WGS-84 storage geometries; refuse what cannot be stored."""
    geoms = shapely.force_2d(np.asarray(geoms, dtype=object))
    rows = np.arange(1, len(geoms) + 1)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for row in rows[missing]:
        problems.add("no geometry", row=int(row))
    out = np.empty(len(geoms), dtype=object)
    for i in np.flatnonzero(~missing):
        coerced = _coerce_type(geoms[i], kind)
        if coerced is None:
            problems.add(
                f"wrong geometry type {geoms[i].geom_type}; this layer needs {_NEEDED[kind]}",
                row=int(i) + 1,
            )
        out[i] = coerced
    ok = np.array([g is not None for g in out], dtype=bool)
    if crs.is_geographic:
        _check_degrees(out, ok, crs, problems)
    converted = _to_wgs84(out, ok, crs)
    _check_in_china(converted, ok, crs, problems)
    repaired = _repair(converted, ok, kind, problems)
    return CheckedGeometries(converted, tuple(repaired))


def _coords(geoms: Geoms, ok: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    coords, index = shapely.get_coordinates(geoms[ok], return_index=True)
    return coords, np.flatnonzero(ok)[index]


def _check_degrees(
    geoms: Geoms, ok: NDArray[np.bool_], crs: SourceCrs, problems: ProblemList
) -> None:
    coords, owner = _coords(geoms, ok)
    x, y = coords[:, 0], coords[:, 1]
    bad = ~_in_box(x, y, (-180.0, 180.0), (-90.0, 90.0)) | ~np.isfinite(x) | ~np.isfinite(y)
    swapped = _in_box(y, x, CHINA_LON, CHINA_LAT)
    for row in np.unique(owner[bad]):
        first = np.flatnonzero(bad & (owner == row))[0]
        where = f"{float(x[first])!r}, {float(y[first])!r}"
        if swapped[first]:
            reason = (
                f"latitude and longitude appear swapped ({where} read as lon, lat; "
                "latitude must be -90..90): put longitude first"
            )
        else:
            reason = (
                f"coordinates out of range for {crs.name} (longitude -180..180, "
                f"latitude -90..90): {where}; projected metres declared as degrees?"
            )
        problems.add(reason, row=int(row) + 1)
        ok[row] = False


def _to_wgs84(geoms: Geoms, ok: NDArray[np.bool_], crs: SourceCrs) -> Geoms:
    out = geoms.copy()
    if not ok.any():
        return out
    coords = shapely.get_coordinates(geoms[ok])
    lon, lat = crs.to_wgs84(coords[:, 0], coords[:, 1])
    out[ok] = shapely.set_coordinates(geoms[ok].copy(), np.column_stack([lon, lat]))
    return out


def _check_in_china(
    geoms: Geoms, ok: NDArray[np.bool_], crs: SourceCrs, problems: ProblemList
) -> None:
    coords, owner = _coords(geoms, ok)
    if len(coords) == 0:
        return
    x, y = coords[:, 0], coords[:, 1]
    inside = _in_box(x, y, CHINA_LON, CHINA_LAT)
    swapped = _in_box(y, x, CHINA_LON, CHINA_LAT)
    for row in np.unique(owner[~inside]):
        first = np.flatnonzero(~inside & (owner == row))[0]
        if swapped[first]:
            reason = (
                f"latitude and longitude appear swapped ({x[first]:.6f}, {y[first]:.6f} "
                "read as lon, lat): put longitude first"
            )
        else:
            reason = (
                f"outside China after converting from {crs.name} ({x[first]:.6f}, "
                f"{y[first]:.6f}): wrong CRS declared?"
            )
        problems.add(reason, row=int(row) + 1)
        ok[row] = False
    # A NaN coordinate fails every comparison above without being "outside".
    for row in np.unique(owner[~np.isfinite(x) | ~np.isfinite(y)]):
        problems.add("coordinate is not a number", row=int(row) + 1)
        ok[row] = False


def _repair(
    geoms: Geoms, ok: NDArray[np.bool_], kind: GeometryKind, problems: ProblemList
) -> list[Problem]:
    repaired: list[Problem] = []
    candidates = geoms.copy()
    candidates[~ok] = None
    valid = shapely.is_valid(candidates)
    for i in np.flatnonzero(ok & ~valid):
        reason = shapely.is_valid_reason(geoms[i])
        fixed = _safe_repair(geoms[i], kind)
        if fixed is None:
            problems.add(f"invalid geometry that cannot be repaired safely: {reason}", int(i) + 1)
            continue
        geoms[i] = fixed
        repaired.append(Problem(f"invalid geometry repaired: {reason}", row=int(i) + 1))
    return repaired


def _safe_repair(geom: shapely.Geometry, kind: GeometryKind) -> shapely.Geometry | None:
    if kind is not GeometryKind.MULTIPOLYGON:
        return None
    fixed = shapely.make_valid(geom)
    if fixed.geom_type == "GeometryCollection":
        polygons = [g for g in fixed.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        fixed = shapely.union_all(polygons) if polygons else None
    if fixed is None or fixed.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    before, after = abs(geom.area), fixed.area
    if before <= 0 or abs(after - before) > REPAIR_AREA_TOLERANCE * before:
        return None
    return fixed if fixed.geom_type == "MultiPolygon" else shapely.multipolygons([fixed])
