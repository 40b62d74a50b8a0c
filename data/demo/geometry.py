"""The metric frame of the demo city: a jittered block lattice, polylines, and WGS-84 output.

Everything is built in metres on CGCS2000 Gauss-Kruger CM 129E (EPSG:4552), relative to an
origin at the district centre, and converted to WGS-84 once per layer at the end.  The
district is a lattice of blocks whose corner vertices are jittered: roads run along lattice
lines and every administrative area is a rectangle of blocks in lattice indices, so grids
tile their parents exactly (shared vertices, no gaps, no overlaps) and stay cheap to build.
Features inside a block are placed in block coordinates (u, v) in [0, 1]² mapped bilinearly,
which keeps straight edges straight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from data.demo.scales import CENTRE, METRIC_CRS, ScaleSpec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
Geoms = NDArray[np.object_]

_TO_METRIC = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
_TO_WGS84 = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
ORIGIN: tuple[float, float] = (
    float(_TO_METRIC.transform(*CENTRE)[0]),
    float(_TO_METRIC.transform(*CENTRE)[1]),
)
"""EPSG:4552 easting, northing of local (0, 0)."""

JITTER = 0.07
"""Lattice vertices move up to 7 % of a block: roads bend a little, blocks stay convex."""


def to_wgs84(geoms: Geoms) -> Geoms:
    """Local metres to WGS-84 longitude/latitude: one PROJ call for all coordinates."""

    def project(xy: FloatArray) -> FloatArray:
        lon, lat = _TO_WGS84.transform(xy[:, 0] + ORIGIN[0], xy[:, 1] + ORIGIN[1])
        return np.column_stack([lon, lat])

    out: Geoms = shapely.transform(geoms, project)
    return out


def points(x: FloatArray, y: FloatArray) -> Geoms:
    """Point geometries from coordinate arrays."""
    out: Geoms = shapely.points(x, y)
    return out


def expand(counts: IntArray) -> tuple[IntArray, IntArray]:
    """(group, rank within group) for groups of the given sizes: the vectorised nested loop."""
    counts = np.asarray(counts, dtype=np.int64)
    group = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    return group, within


@dataclass(frozen=True)
class Lattice:
    """Block corner vertices in metres, x[i, j], y[i, j] for i <= blocks_x, j <= blocks_y.

    Block (bi, bj) has corners (bi, bj) .. (bi + 1, bj + 1); j grows northwards. Flat block
    index = bj * blocks_x + bi.
    """

    x: FloatArray
    y: FloatArray

    @property
    def nx(self) -> int:
        """Blocks west-east."""
        return int(self.x.shape[0]) - 1

    @property
    def ny(self) -> int:
        """Blocks south-north."""
        return int(self.x.shape[1]) - 1

    def flat(self, bi: IntArray, bj: IntArray) -> IntArray:
        """Flat block index."""
        out: IntArray = bj * self.nx + bi
        return out

    def point(
        self, bi: IntArray, bj: IntArray, u: FloatArray, v: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Metres of block coordinates (u, v) of block (bi, bj); arrays broadcast."""
        w00 = (1 - u) * (1 - v)
        w10 = u * (1 - v)
        w01 = (1 - u) * v
        w11 = u * v
        x = (
            w00 * self.x[bi, bj]
            + w10 * self.x[bi + 1, bj]
            + w01 * self.x[bi, bj + 1]
            + w11 * self.x[bi + 1, bj + 1]
        )
        y = (
            w00 * self.y[bi, bj]
            + w10 * self.y[bi + 1, bj]
            + w01 * self.y[bi, bj + 1]
            + w11 * self.y[bi + 1, bj + 1]
        )
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def rects(
        self,
        bi: IntArray,
        bj: IntArray,
        u0: FloatArray,
        u1: FloatArray,
        v0: FloatArray,
        v1: FloatArray,
    ) -> Geoms:
        """Quadrilaterals of block-coordinate rectangles, with each edge's midpoint as a vertex.

        The midpoints are where gates and doors go (`rect_edge_point`): as vertices they lie
        exactly on the boundary, whatever the projection does to straight edges.
        """
        um, vm = (u0 + u1) / 2, (v0 + v1) / 2
        us = np.stack([u0, um, u1, u1, u1, um, u0, u0], axis=1)
        vs = np.stack([v0, v0, v0, vm, v1, v1, v1, vm], axis=1)
        x, y = self.point(bi[:, None], bj[:, None], us, vs)
        out: Geoms = shapely.polygons(np.stack([x, y], axis=-1))
        return out

    def index_rects(self, i0: IntArray, i1: IntArray, j0: IntArray, j1: IntArray) -> Geoms:
        """Polygons of lattice-index rectangles: the boundary walk through every lattice vertex.

        Neighbouring rectangles share their boundary vertices, so a parent built from the
        same lattice is exactly the union of its children.
        """
        w, h = i1 - i0, j1 - j0
        ring = 2 * (w + h) + 1
        rect, k = expand(ring)
        w, h, i0, i1, j0, j1 = w[rect], h[rect], i0[rect], i1[rect], j0[rect], j1[rect]
        i = np.select(
            [k < w, k < w + h, k < 2 * w + h],
            [i0 + k, i1, i1 - (k - w - h)],
            i0,
        )
        j = np.select(
            [k < w, k < w + h, k < 2 * w + h],
            [j0, j0 + (k - w), j1],
            j1 - (k - 2 * w - h),
        )
        rings = shapely.linearrings(self.x[i, j], self.y[i, j], indices=rect)
        out: Geoms = shapely.polygons(rings)
        return out

    def blocks(self) -> Geoms:
        """Every block quadrilateral, in flat order."""
        bj, bi = np.divmod(np.arange(self.nx * self.ny, dtype=np.int64), self.nx)
        return self.index_rects(bi, bi + 1, bj, bj + 1)


def make_lattice(spec: ScaleSpec, rng: np.random.Generator) -> Lattice:
    """The jittered block lattice centred on the origin."""
    b = spec.block_m
    gx, gy = np.meshgrid(
        (np.arange(spec.blocks_x + 1) - spec.blocks_x / 2) * b,
        (np.arange(spec.blocks_y + 1) - spec.blocks_y / 2) * b,
        indexing="ij",
    )
    jitter = JITTER * b
    x = gx + rng.uniform(-jitter, jitter, gx.shape)
    y = gy + rng.uniform(-jitter, jitter, gy.shape)
    return Lattice(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))


@dataclass(frozen=True)
class Polylines:
    """Many polylines in one coordinate array: line k is coords[starts[k]:starts[k + 1]]."""

    coords: FloatArray
    starts: IntArray

    def __len__(self) -> int:
        return len(self.starts) - 1

    def geoms(self) -> Geoms:
        """LineString geometries."""
        line = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.starts))
        out: Geoms = shapely.linestrings(self.coords, indices=line)
        return out

    def _cumulative(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        seg = self.coords[1:] - self.coords[:-1]
        seglen = np.hypot(seg[:, 0], seg[:, 1])
        seglen[self.starts[1:-1] - 1] = 0.0  # the jump from one line to the next
        cum = np.concatenate([[0.0], np.cumsum(seglen)])
        return seg, seglen, cum

    def lengths(self) -> FloatArray:
        """Length of each line in metres."""
        _, _, cum = self._cumulative()
        out: FloatArray = cum[self.starts[1:] - 1] - cum[self.starts[:-1]]
        return out

    def along(
        self, line: IntArray, dist: FloatArray, offset: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Points `dist` metres along `line`, `offset` metres to its left (negative: right).

        Returns x, y and the unit left normal there (so a caller can step towards the road).
        """
        seg, seglen, cum = self._cumulative()
        target = cum[self.starts[line]] + dist
        k = np.searchsorted(cum, target, side="right") - 1
        k = np.clip(k, self.starts[line], self.starts[line + 1] - 2)
        t = (target - cum[k]) / seglen[k]
        dx, dy = seg[k, 0] / seglen[k], seg[k, 1] / seglen[k]
        nx, ny = -dy, dx
        x = self.coords[k, 0] + t * seg[k, 0] + nx * offset
        y = self.coords[k, 1] + t * seg[k, 1] + ny * offset
        return x, y, nx, ny


def locate(polygons: Geoms, x: FloatArray, y: FloatArray) -> IntArray:
    """Index of the polygon containing each point (the first, if on a shared edge), or -1."""
    tree = shapely.STRtree(polygons)
    pts, found = tree.query(shapely.points(x, y), predicate="intersects")
    order = np.lexsort((found, pts))
    pts, found = pts[order], found[order]
    out = np.full(len(x), -1, dtype=np.int64)
    _, first = np.unique(pts, return_index=True)
    out[pts[first]] = found[first]
    return out
