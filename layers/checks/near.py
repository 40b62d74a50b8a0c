"""Geodesic "within d metres" over a whole city, cheaply, with PostGIS's own verdicts.

Two ways, one answer. Kept pairs: the database keeps every pair of a point (bin, board)
and a shape (building, entrance, compound) within a relation's reach, with its geodesic
distance, by triggers (migration 0007); a check whose distance is within the reach reads
them (`kept`, `kept_within`). Measured: beyond the reach, or for relations not kept, the
pairs are measured at run time (`box`, `points_within`, `shape_within`).

Measuring with `ST_DWithin(a.geog, b.geog, d)` costs about 10 µs a candidate pair on the
ellipsoid, most of a city-wide check. Here each pair is first measured on a plane that
is conformal at the point's latitude (longitude scaled by N cos φ / M, metres = degrees
of latitude x M), which is off by far less than the margin below; the plane decides
every pair that is clearly nearer or farther than d, and the few within the margin of d
are measured by the same `ST_DWithin` on geography. So every verdict is PostGIS's
geodesic one, exactly.

The margin (metres) bounds, with room to spare:
- the plane's scale error over the pair: the scale varies with latitude by at most
  (tan |φ| + 0.03) per radian, over at most d / 6,335 km of latitude;
- the geometry's edges, straight in longitude/latitude, against the great-circle edges of
  geography: apart by at most L² (tan |φ| + 0.03) / 8R for an edge of length L, bounded
  by the bounding box's diagonal;
- PostGIS's own geodesic (the spheroid distance to the sphere's nearest point) against
  the true one: a few millimetres per hundred metres; and 5 cm for rounding.

Candidates come from the 2D geometry index through a box in degrees that holds every
point within d of the geometry at any latitude up to 89° (a degree of latitude is at
least 110,574 m; a degree of longitude at least 111,319 cos φ m): the same index probe a
planar `ST_DWithin` makes, never a cast in the predicate (TRAPS.md).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

E2 = 0.00669438002290
"""First eccentricity squared of GRS80 (CGCS2000; WGS-84 differs in the 11th digit)."""

_A = 6378137.0
_R = 6.3e6  # metres: less than every radius of curvature, so bounds built on it are safe


def _lat_span(metres: str) -> str:
    """Degrees of latitude that hold `metres` of any geodesic."""
    return f"(({metres}) / 110000.0)"


def box(geom: str, metres: str) -> str:
    """`geom`'s box widened by `metres` in every direction, in degrees: for `&&` on the index."""
    dy = _lat_span(metres)
    phi = f"least(89.0, greatest(abs(ST_YMin({geom})), abs(ST_YMax({geom}))) + {dy})"
    return f"ST_Expand({geom}, ({metres}) / (111000.0 * cos(radians({phi}))), {dy})"


def _kx(phi: str) -> str:
    """Longitude scale making degrees conformal at latitude `phi` (radians): N cos φ / M."""
    return f"(cos({phi}) * (1 - {E2!r} * sin({phi}) ^ 2) / (1 - {E2!r}))"


def _m_per_degree(phi: str) -> str:
    """Metres per degree of latitude at `phi` (radians): the meridian radius M in degrees."""
    return f"(radians({_A * (1 - E2)!r}) / (1 - {E2!r} * sin({phi}) ^ 2) ^ 1.5)"


def _margin(phi: str, metres: str, extent_m: str = "0") -> str:
    """How far the plane may be off, for a pair within about `metres` (see the module)."""
    t = f"(tan(least(1.5, abs({phi}) + 0.01)) + 0.03)"
    r = f"({metres})"
    e = f"({extent_m})"
    return f"(0.05 + {r} * 1e-4 + {r} * {r} * {t} / {_R!r} + {e} * {e} * {t} / {4 * _R!r})"


def _decide(planar_m: str, margin: str, metres: str, geog_a: str, geog_b: str) -> str:
    """True when within `metres`: the plane where it is clear, else the ellipsoid.

    `width_bucket` evaluates the planar distance once: 0 below d - margin, 2 from d + margin.
    """
    return (
        f"(CASE width_bucket({planar_m}, ({metres}) - {margin}, ({metres}) + {margin}, 1) "
        f"WHEN 0 THEN TRUE WHEN 2 THEN FALSE "
        f"ELSE ST_DWithin({geog_a}, {geog_b}, {metres}) END)"
    )


def points_within(a: str, b: str, metres: str) -> str:
    """SQL: point rows `a` and `b` (with `geom` and `geog`) are within `metres`, geodesic."""
    phi = f"radians(ST_Y({a}.geom))"
    planar = (
        f"({_m_per_degree(phi)} * sqrt((((ST_X({b}.geom) - ST_X({a}.geom)) * {_kx(phi)}) ^ 2) "
        f"+ ((ST_Y({b}.geom) - ST_Y({a}.geom)) ^ 2)))"
    )
    return _decide(planar, _margin(phi, metres), metres, f"{a}.geog", f"{b}.geog")


def shape_within(shape: str, point: str, metres: str) -> str:
    """SQL: row `shape` (any geometry) is within `metres` of point row `point`, geodesic."""
    phi = f"radians(ST_Y({point}.geom))"
    kx = _kx(phi)
    g = f"{shape}.geom"
    planar = (
        f"({_m_per_degree(phi)} * ST_Distance(ST_Scale({g}, {kx}, 1), "
        f"ST_SetSRID(ST_MakePoint(ST_X({point}.geom) * {kx}, ST_Y({point}.geom)), ST_SRID({g}))))"
    )
    extent = (
        f"({_m_per_degree(phi)} * sqrt(((ST_XMax({g}) - ST_XMin({g})) * {kx}) ^ 2 "
        f"+ (ST_YMax({g}) - ST_YMin({g})) ^ 2))"
    )
    return _decide(planar, _margin(phi, metres, extent), metres, f"{shape}.geog", f"{point}.geog")


# --- pairs the database keeps (migration 0007) --------------------------------------------
#
# `near_pairs` holds, per relation of `near_relations`, every pair of a point (`a_id`) and a
# shape (`b_id`) within the relation's reach (0: the point inside the shape), with its
# geodesic distance (`ST_Distance` on geography), kept by triggers on both tables.

BINS_BUILDINGS = "bins-buildings"
SIGNAGE_BUILDINGS = "signage-buildings"
SIGNAGE_ENTRANCES = "signage-entrances"
SIGNAGE_COMPOUNDS = "signage-compounds"
"""Relation ids (rows of `near_relations`)."""


def kept(conn: Connection, relation: str, metres: float) -> bool:
    """Whether the database keeps the pairs of `relation` out to `metres`."""
    reach = conn.execute(
        text("SELECT reach_m FROM near_relations WHERE relation = :relation"),
        {"relation": relation},
    ).scalar_one_or_none()
    return reach is not None and metres <= reach


def kept_pairs(n: str, relation: str) -> str:
    """SQL: the rows of `near_pairs` aliased `n` that belong to `relation`."""
    return f"{n}.relation = '{relation}'"


def kept_within(n: str, metres: str, a_table: str, b_table: str) -> str:
    """SQL: kept pair `n` lies within `metres`: its stored distance decides, and within a
    millimetre of the limit PostGIS's `ST_DWithin` on the two rows referees, so a verdict
    is the same as measured at run time."""
    return (
        f"(CASE WHEN abs({n}.distance_m - ({metres})) > 0.001 THEN {n}.distance_m <= ({metres}) "
        f"ELSE (SELECT ST_DWithin(x.geog, y.geog, {metres}) FROM {a_table} x, {b_table} y "
        f"WHERE x.id = {n}.a_id AND y.id = {n}.b_id) END)"
    )
