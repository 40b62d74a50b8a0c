"""The CRSs the API speaks (OGC API Features Part 2), with their axis order.

Data are stored in EPSG:4326 with longitude first (x = lon), as everything
inside PostGIS. On the wire, OGC's rule is the CRS definition's axis order:
CRS84 is lon/lat, while EPSG:4326 and EPSG:4490 are lat/lon and the CGCS2000
Gauss-Kruger CRSs are northing/easting. So `swap_axes` tells whether
coordinates must be flipped between the wire and PostGIS.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pyproj import CRS

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"


@dataclass(frozen=True)
class ApiCrs:
    """A CRS offered by the API."""

    uri: str
    srid: int
    swap_axes: bool  # wire axis order is (y, x) relative to PostGIS's (x, y)
    geographic: bool

    @property
    def short(self) -> str:
        """'CRS84' or 'EPSG:4552', for messages and headers."""
        return "CRS84" if self.uri == CRS84 else f"EPSG:{self.srid}"


class UnsupportedCrs(ValueError):
    """A `crs`, `bbox-crs` or `filter-crs` the API does not offer."""


@cache
def _epsg(code: int) -> ApiCrs:
    crs = CRS.from_epsg(code)
    first = crs.axis_info[0].direction.lower()
    return ApiCrs(EPSG_URI.format(code=code), code, first in ("north", "south"), crs.is_geographic)


def supported(city_gk_epsg: int) -> tuple[ApiCrs, ...]:
    """CRS84 (the default), EPSG:4326, CGCS2000, Web Mercator and the city's GK zone."""
    return (
        ApiCrs(CRS84, 4326, swap_axes=False, geographic=True),
        _epsg(4326),
        _epsg(4490),
        _epsg(3857),
        _epsg(city_gk_epsg),
    )


def resolve(text: str | None, city_gk_epsg: int) -> ApiCrs:
    """The offered CRS a parameter names (URI, 'EPSG:n' or 'CRS84'); CRS84 when absent."""
    offered = supported(city_gk_epsg)
    if text is None or text.strip() == "":
        return offered[0]
    key = text.strip()
    for crs in offered:
        if key in (crs.uri, crs.short, f"[{crs.short}]", f"[{crs.uri}]"):
            return crs
        if key.upper() in (crs.short.upper(), f"OGC:{crs.short}".upper()):
            return crs
    raise UnsupportedCrs(
        f"CRS {text!r} is not offered; use one of: {', '.join(c.uri for c in offered)}"
    )
