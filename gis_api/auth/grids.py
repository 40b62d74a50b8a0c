"""Grid-scoped rights: an inspector changes only what lies in his own grids."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeAlias

import shapely
from sqlalchemy import Connection

from gis_api.auth.principal import Principal
from gis_api.problems import ApiProblem
from layers.grid_rights import Placement, placements

GeometryInput: TypeAlias = bytes | str | shapely.Geometry
"""WKB (bytes or hex), WKT, or a shapely geometry; WGS-84 lon/lat."""

_HEX = re.compile(r"[0-9A-Fa-f]+")


def _wkb(geometry: GeometryInput) -> bytes | None:
    """Plain WKB of a geometry (None when empty); ValueError when unreadable."""
    if isinstance(geometry, bytes):
        geom = shapely.from_wkb(geometry)
    elif isinstance(geometry, str):
        text = geometry.strip()
        geom = shapely.from_wkb(text) if _HEX.fullmatch(text) else shapely.from_wkt(text)
    else:
        geom = geometry
    if geom is None or geom.is_empty:
        return None
    wkb: bytes = shapely.to_wkb(geom, include_srid=False)
    return wkb


def _where(p: Placement) -> str:
    grid = f"grid {p.grid_code} {p.grid_name or ''}".rstrip() if p.grid_code else "no grid"
    return f"the point ({p.lon:.6f}, {p.lat:.6f}) lies in {grid}"


def check_in_grids(
    conn: Connection, principal: Principal, geometries: Iterable[GeometryInput]
) -> None:
    """Refuse (403, naming the grids) a write touching anything outside the user's grids.

    Give every geometry the write touches: for an edit the old *and* the new
    one, so an asset can be neither taken from nor moved into another grid.
    Planners and admins pass; leaders never write.
    """
    if not principal.can_write:
        raise ApiProblem(403, f"{principal.name} is a {principal.role}: leaders cannot write")
    if not principal.grid_scoped:
        return
    wkbs = [w for w in (_wkb(g) for g in geometries) if w is not None]
    outside = [p for p in placements(conn, principal.grid_codes, wkbs) if not p.allowed]
    if not outside:
        return
    mine = ", ".join(principal.grid_codes) or "none"
    places = "; ".join(dict.fromkeys(_where(p) for p in outside))
    raise ApiProblem(
        403,
        f"outside your grids ({mine}): {places}",
        grids=sorted({p.grid_code for p in outside if p.grid_code}),
    )
