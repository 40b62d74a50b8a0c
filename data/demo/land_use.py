"""What occupies each quarter of each block: a residential compound, another compound,
a school, or open land (parks, markets).

A block has four slots (south-west, south-east, north-west, north-east), each set back
20 m from the roads around it and 15 m from the block's midline (where a back street may
run).  Slots are rectangles in block coordinates, so everything placed in them is a
vectorised bilinear mapping; slot-local coordinates (s, t) in [0, 1]² run west-east and
south-north inside a slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.demo.geometry import FloatArray, Geoms, IntArray, Lattice

SLOT_SPANS = ((0.04, 0.47), (0.53, 0.96))
"""Block-coordinate extent of the western/southern and eastern/northern slot halves."""

RESIDENTIAL, OTHER_COMPOUND, SCHOOL, OPEN = 0, 1, 2, 3
USE_SHARES = (0.74, 0.10, 0.0, 0.16)
"""Shares of the non-school slots: residential compound, other compound, -, open land."""


@dataclass(frozen=True)
class Slots:
    """All slots of the district: position, extent and use."""

    lattice: Lattice
    bi: IntArray
    bj: IntArray
    qx: IntArray
    """0: western half of its block, 1: eastern."""
    qy: IntArray
    """0: southern half of its block, 1: northern."""
    use: IntArray

    @property
    def block(self) -> IntArray:
        """Flat block index of each slot."""
        return self.lattice.flat(self.bi, self.bj)

    def span(self, slot: IntArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """u0, u1, v0, v1 of slots in block coordinates."""
        lo = np.array([s[0] for s in SLOT_SPANS])
        hi = np.array([s[1] for s in SLOT_SPANS])
        qx, qy = self.qx[slot], self.qy[slot]
        return lo[qx], hi[qx], lo[qy], hi[qy]

    def to_block(
        self, slot: IntArray, s: FloatArray, t: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Block coordinates (u, v) of slot-local (s, t)."""
        u0, u1, v0, v1 = self.span(slot)
        return u0 + s * (u1 - u0), v0 + t * (v1 - v0)

    def point(self, slot: IntArray, s: FloatArray, t: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Metres of slot-local (s, t)."""
        u, v = self.to_block(slot, s, t)
        return self.lattice.point(self.bi[slot], self.bj[slot], u, v)

    def rects(
        self, slot: IntArray, s0: FloatArray, s1: FloatArray, t0: FloatArray, t1: FloatArray
    ) -> Geoms:
        """Polygons of slot-local rectangles (edge midpoints as vertices)."""
        u0, v0 = self.to_block(slot, s0, t0)
        u1, v1 = self.to_block(slot, s1, t1)
        return self.lattice.rects(self.bi[slot], self.bj[slot], u0, u1, v0, v1)

    def outer_column_edge_has_road(self) -> np.ndarray:
        """Whether the outer west/east edge of each slot faces a road (not the district edge)."""
        out: np.ndarray = np.where(self.qx == 0, self.bi > 0, self.bi < self.lattice.nx - 1)
        return out


def plan_slots(lattice: Lattice, schools: int, rng: np.random.Generator) -> Slots:
    """Four slots per block; `schools` of them (facing a road) become campuses."""
    n = lattice.nx * lattice.ny * 4
    index = np.arange(n, dtype=np.int64)
    block, quarter = np.divmod(index, 4)
    bj, bi = np.divmod(block, lattice.nx)
    qx, qy = quarter % 2, quarter // 2
    use = rng.choice(4, n, p=np.array(USE_SHARES) / sum(USE_SHARES)).astype(np.int64)
    slots = Slots(lattice, bi, bj, qx, qy, use)
    candidates = np.flatnonzero(slots.outer_column_edge_has_road())
    campus = rng.choice(candidates, min(schools, len(candidates)), replace=False)
    use[np.sort(campus)] = SCHOOL
    return slots
