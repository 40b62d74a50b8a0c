"""Coordinate reference systems of Chinese city data, and conversion into WGS-84.

City data arrives in four kinds of coordinates:

* WGS-84 / CGCS2000 longitude-latitude (GPS, OpenStreetMap, national surveys);
* CGCS2000 3-degree Gauss-Kruger metres (EPSG:4513-4554: cadastral and planning data);
* GCJ-02, the obfuscated "Mars" coordinates of AMap (Gaode) and Tencent maps;
* BD-09, Baidu's further obfuscation of GCJ-02.

PROJ does not implement GCJ-02 or BD-09 (PROJ issue #982): they are not a datum shift but a
published obfuscation formula, implemented here with numpy. The forward directions
(WGS-84 -> GCJ-02 -> BD-09) are closed formulas; the inverses are not, so they start from the
usual one-step approximation (metres off) and refine it by fixed-point iteration until the
correction is below `TOLERANCE_DEG`.

Points outside the rough China box (`out_of_china`) are not shifted, in either direction:
that is how AMap, Tencent and Baidu encoders behave, so foreign coordinates pass through as-is.

All functions take (lon, lat) in that order, accept floats or array-likes, broadcast them
against each other and return new float64 arrays (0-d arrays for scalar input; `float()`
turns one into a Python float).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

__all__ = [
    "BD09",
    "GCJ02",
    "TOLERANCE_DEG",
    "WGS84",
    "SourceCrs",
    "UnknownCrs",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gauss_kruger_epsg",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "parse_crs",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Array = NDArray[np.float64]
Coords = tuple[Array, Array]

# Constants of the published GCJ-02 algorithm: Krasovsky 1940 ellipsoid.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
# BD-09 constant: pi * 3000 / 180.
_X_PI: Final = math.pi * 3000.0 / 180.0

# The box eviltransform, gcoord and PRCoords use to decide what is "in China".
CHINA_LON: Final = (72.004, 137.8347)
CHINA_LAT: Final = (0.8293, 55.8271)

# Inverses stop once the last correction is below this (1e-9 degrees is about 0.1 mm).
TOLERANCE_DEG: Final = 1e-9
# Each step shrinks the error >100-fold: metres -> 0.1 mm takes 3 steps, so 10 is ample.
MAX_ITER: Final = 10

WGS84_NAME: Final = "EPSG:4326"

# Points per chunk: temporaries of 16384 float64 (128 KiB) stay in cache.
_CHUNK: Final = 16384


def _pair(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Fresh, contiguous float64 copies of lon and lat broadcast to one shape."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.array(x, dtype=np.float64, order="C"), np.array(y, dtype=np.float64, order="C")


def _inside(lon: Array, lat: Array) -> NDArray[np.bool_]:
    return (
        (lon >= CHINA_LON[0])
        & (lon <= CHINA_LON[1])
        & (lat >= CHINA_LAT[0])
        & (lat <= CHINA_LAT[1])
    )


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where a point lies outside the box the encoders shift (NaN counts as outside)."""
    return np.asarray(~_inside(*_pair(lon, lat)))


Kernel = Callable[[Array, Array], Coords]


def _apply(kernel: Kernel, lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Run `kernel` on the points inside China, leaving the others as they are.

    Works through the points in chunks: each kernel creates a few dozen temporaries, and
    cache-sized ones make the whole conversion about a third faster than full-length ones.
    Every operation is element-wise, so chunking does not change any result.
    """
    x, y = _pair(lon, lat)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)  # views: _pair returns contiguous copies
    for start in range(0, flat_x.size, _CHUNK):
        cx, cy = flat_x[start : start + _CHUNK], flat_y[start : start + _CHUNK]
        inside = _inside(cx, cy)
        if inside.all():
            cx[:], cy[:] = kernel(cx, cy)
        elif inside.any():
            cx[inside], cy[inside] = kernel(cx[inside], cy[inside])
    return x, y


def _sin3(s: Array) -> Array:
    """sin(3a) from s = sin(a): saves a call to sin, the dominant cost here."""
    return s * (3.0 - 4.0 * s * s)


def _gcj_delta(lon: Array, lat: Array) -> Coords:
    """GCJ-02 minus WGS-84 (degrees) at a WGS-84 point: the published formula.

    sin(pi x), sin(pi y) and sin(6 pi x) are taken from sin(pi x / 3), sin(pi y / 3) and
    sin(2 pi x) by the triple-angle identity, and cos(lat) from sin(lat); the results agree
    with the literal formula to ~1e-14 degrees at two thirds of the cost.
    """
    x = lon - 105.0
    y = lat - 35.0
    xpi = x * np.pi
    ypi = y * np.pi
    sin_2x = np.sin(2.0 * xpi)
    sin_x3 = np.sin(xpi / 3.0)
    sin_y3 = np.sin(ypi / 3.0)
    wiggle = (20.0 * _sin3(sin_2x) + 20.0 * sin_2x) * (2.0 / 3.0)
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat += wiggle
    dlat += (20.0 * _sin3(sin_y3) + 40.0 * sin_y3) * (2.0 / 3.0)
    dlat += (160.0 * np.sin(ypi / 12.0) + 320.0 * np.sin(ypi / 30.0)) * (2.0 / 3.0)
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon += wiggle
    dlon += (20.0 * _sin3(sin_x3) + 40.0 * sin_x3) * (2.0 / 3.0)
    dlon += (150.0 * np.sin(xpi / 12.0) + 300.0 * np.sin(xpi / 30.0)) * (2.0 / 3.0)
    sin_lat = np.sin(lat * (np.pi / 180.0))
    cos_lat = np.sqrt(1.0 - sin_lat * sin_lat)  # latitudes here are 0.8-55.8 degrees
    magic = 1.0 - _EE * sin_lat * sin_lat
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * cos_lat * np.pi)
    return dlon, dlat


def _gcj_forward(lon: Array, lat: Array) -> Coords:
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_inverse(lon: Array, lat: Array, max_iter: int) -> Coords:
    dlon, dlat = _gcj_delta(lon, lat)
    return _refine(_gcj_forward, lon, lat, lon - dlon, lat - dlat, max_iter)


def _rotate(x: Array, y: Array, scale: Array, angle: Array) -> Coords:
    """scale * (cos, sin)(atan2(y, x) + angle) for a tiny angle (|angle| <= 3e-6 rad).

    Equal to Baidu's polar form; the angle-sum identity with 3-term series for the tiny
    angle (error < 1e-23) replaces atan2, cos and sin of the full angle.
    """
    cos_a = 1.0 - 0.5 * angle * angle
    sin_a = angle - angle * angle * angle / 6.0
    factor = scale / np.hypot(x, y)
    return factor * (x * cos_a - y * sin_a), factor * (y * cos_a + x * sin_a)


def _bd_forward(lon: Array, lat: Array) -> Coords:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    bx, by = _rotate(lon, lat, z, 0.000003 * np.cos(lon * _X_PI))
    return bx + 0.0065, by + 0.006


def _bd_inverse(lon: Array, lat: Array, max_iter: int) -> Coords:
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    gx, gy = _rotate(x, y, z, -0.000003 * np.cos(x * _X_PI))
    return _refine(_bd_forward, lon, lat, gx, gy, max_iter)


def _refine(
    forward: Kernel, target_lon: Array, target_lat: Array, lon: Array, lat: Array, max_iter: int
) -> Coords:
    """Solve forward(p) = target by fixed-point iteration p += target - forward(p).

    Both obfuscations are the identity plus a slowly varying offset, so the iteration is a
    contraction: each step divides the error by ~150 (GCJ-02) or ~100 (BD-09). Each point
    stops on its own once its correction is below TOLERANCE_DEG, so a point's result does
    not depend on the other points converted with it.
    """
    lon, lat = lon.copy(), lat.copy()
    active: NDArray[np.intp] | slice = slice(None)
    for _ in range(max_iter):
        f_lon, f_lat = forward(lon[active], lat[active])
        e_lon = target_lon[active] - f_lon
        e_lat = target_lat[active] - f_lat
        lon[active] += e_lon
        lat[active] += e_lat
        going = (np.abs(e_lon) >= TOLERANCE_DEG) | (np.abs(e_lat) >= TOLERANCE_DEG)
        active = np.arange(lon.size)[active][going]
        if active.size == 0:
            break
    return lon, lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS-84 to GCJ-02 (AMap/Tencent); points outside China are returned unchanged."""
    return _apply(_gcj_forward, lon, lat)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, max_iter: int = MAX_ITER) -> Coords:
    """GCJ-02 to WGS-84, iterated to 1e-9 degrees; points outside China are returned unchanged.

    The common one-step inverse (subtract the offset evaluated at the GCJ-02 point) is off by
    up to ~5 m because the offset is evaluated at the wrong point; each fixed-point step
    shrinks that error ~150-fold. `max_iter=0` gives the one-step inverse.
    """
    return _apply(partial(_gcj_inverse, max_iter=max_iter), lon, lat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """GCJ-02 to BD-09 (Baidu); points outside China are returned unchanged."""
    return _apply(_bd_forward, lon, lat)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, max_iter: int = MAX_ITER) -> Coords:
    """BD-09 to GCJ-02, iterated to 1e-9 degrees; points outside China are returned unchanged.

    The published one-step inverse evaluates Baidu's sin/cos perturbations at the BD-09 point
    instead of the GCJ-02 one, which leaves up to ~0.2 m of error; fixed-point steps remove
    it. `max_iter=0` gives the one-step inverse.
    """
    return _apply(partial(_bd_inverse, max_iter=max_iter), lon, lat)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """WGS-84 to BD-09, through GCJ-02 as Baidu defines it."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, max_iter: int = MAX_ITER) -> Coords:
    """BD-09 to WGS-84 through GCJ-02, both inverses iterated (`max_iter=0`: one-step)."""
    g_lon, g_lat = bd09_to_gcj02(lon, lat, max_iter=max_iter)
    return gcj02_to_wgs84(g_lon, g_lat, max_iter=max_iter)


class UnknownCrs(ValueError):
    """A CRS text that is neither an alias known here nor a CRS pyproj can use."""


CrsKind = Literal["proj", "gcj02", "bd09"]


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    """Cached pyproj transformer in (x=lon/easting, y=lat/northing) order.

    always_xy matters: EPSG:4326/4490 are lat-lon and the Gauss-Kruger CRSs northing-easting
    by definition, while every file and array here is x-then-y. Transformers are thread-safe.
    """
    transformer: Transformer = Transformer.from_crs(source, target, always_xy=True)
    return transformer


@dataclass(frozen=True)
class SourceCrs:
    """The CRS a data set's coordinates are in, and how to get them into WGS-84.

    `name` is a canonical label ('EPSG:4326', 'EPSG:4549', 'GCJ-02', 'BD-09'); `definition`
    is what pyproj is given (authority code or WKT; empty for GCJ-02/BD-09).
    """

    name: str
    is_geographic: bool
    kind: CrsKind = "proj"
    definition: str = ""

    def to_wgs84(self, x: ArrayLike, y: ArrayLike) -> Coords:
        """(lon, lat) in WGS-84 of points given as (x, y) = (lon or easting, lat or northing)."""
        if self.kind == "gcj02":
            return gcj02_to_wgs84(x, y)
        if self.kind == "bd09":
            return bd09_to_wgs84(x, y)
        return self._transform(self.definition, WGS84_NAME, x, y)

    def from_wgs84(self, lon: ArrayLike, lat: ArrayLike) -> Coords:
        """(x, y) in this CRS of WGS-84 points: for export and for GCJ-02/BD-09 basemaps."""
        if self.kind == "gcj02":
            return wgs84_to_gcj02(lon, lat)
        if self.kind == "bd09":
            return wgs84_to_bd09(lon, lat)
        return self._transform(WGS84_NAME, self.definition, lon, lat)

    @staticmethod
    def _transform(source: str, target: str, x: ArrayLike, y: ArrayLike) -> Coords:
        xs, ys = _pair(x, y)
        if source == target:
            return xs, ys
        out_x, out_y = _transformer(source, target).transform(xs, ys)
        return np.asarray(out_x, dtype=np.float64), np.asarray(out_y, dtype=np.float64)


WGS84: Final = SourceCrs(WGS84_NAME, is_geographic=True, definition=WGS84_NAME)
GCJ02: Final = SourceCrs("GCJ-02", is_geographic=True, kind="gcj02")
BD09: Final = SourceCrs("BD-09", is_geographic=True, kind="bd09")

# Spellings seen in the wild, keyed by lower case without '-', '_' or spaces.
_ALIASES: Final[dict[str, SourceCrs]] = {
    "epsg:4326": WGS84,
    "wgs84": WGS84,
    # CRS84 is WGS-84 in lon/lat order; everything here is lon/lat, so it is the same.
    "crs84": WGS84,
    "ogc:crs84": WGS84,
    "gcj02": GCJ02,
    "bd09": BD09,
    "bd09ll": BD09,
}
_PYPROJ_ALIASES: Final[dict[str, str]] = {"cgcs2000": "EPSG:4490"}

_ACCEPTED: Final = (
    "expected EPSG:4326/WGS84/CRS84, EPSG:4490/CGCS2000, GCJ-02, BD-09, "
    "another EPSG code (e.g. EPSG:4549) or WKT"
)


def parse_crs(text: str) -> SourceCrs:
    """The SourceCrs a user, an upload form or a file header names; UnknownCrs if none.

    Accepts the aliases above (case-insensitive) and anything pyproj understands that can
    be transformed to WGS-84 in two dimensions.
    """
    raw = text.strip()
    key = raw.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in _ALIASES:
        return _ALIASES[key]
    if raw.isdigit():
        raw = f"EPSG:{raw}"
    raw = _PYPROJ_ALIASES.get(key, raw)
    if not raw:
        raise UnknownCrs(f"empty CRS {text!r}: {_ACCEPTED}")
    try:
        crs = CRS.from_user_input(raw)
    except CRSError as exc:
        raise UnknownCrs(f"unknown CRS {text!r}: {_ACCEPTED}") from exc
    if not (crs.is_geographic or crs.is_projected):
        raise UnknownCrs(f"CRS {text!r} ({crs.name}) is not a geographic or projected CRS")
    authority = crs.to_authority(min_confidence=100)
    if authority is not None and f"{authority[0]}:{authority[1]}" in ("EPSG:4326", "OGC:CRS84"):
        return WGS84
    definition = f"{authority[0]}:{authority[1]}" if authority else crs.to_wkt()
    name = definition if authority else str(crs.name)
    try:
        _transformer(definition, WGS84_NAME)
    except (CRSError, ProjError) as exc:
        raise UnknownCrs(f"CRS {text!r} ({crs.name}) cannot be converted to WGS-84") from exc
    return SourceCrs(name, is_geographic=bool(crs.is_geographic), definition=definition)


# CGCS2000 3-degree Gauss-Kruger zones without false-easting zone prefix:
# EPSG:4534 is CM 75E, each next code 3 degrees further east, up to EPSG:4554 = CM 135E.
_GK_FIRST_EPSG: Final = 4534
_GK_FIRST_CM: Final = 75
_GK_LAST_CM: Final = 135


def gauss_kruger_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Kruger CRS (no zone prefix) for a longitude.

    The zone is the one whose central meridian is the multiple of 3 nearest to `lon`
    (the 3-degree zones are centred on multiples of 3); ValueError outside 73.5-136.5E.
    """
    if not math.isfinite(lon) or not (_GK_FIRST_CM - 1.5 <= lon <= _GK_LAST_CM + 1.5):
        raise ValueError(
            f"longitude {lon!r} is outside the CGCS2000 Gauss-Kruger zones 73.5-136.5E"
        )
    cm = 3 * math.floor(lon / 3.0 + 0.5)
    cm = min(max(cm, _GK_FIRST_CM), _GK_LAST_CM)
    return _GK_FIRST_EPSG + (cm - _GK_FIRST_CM) // 3
