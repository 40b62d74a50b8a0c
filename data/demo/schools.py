"""School campuses: polygons in their slot's road-facing corner, with gates on the boundary.

The 200 m zone is measured from the campus boundary (文市函[2003]560号), and tobacco rules
from the gates, so both are real geometry here: the campus polygon and its main gate on
the edge that faces a road, where the venues module puts the shops that break the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.demo.frames import Layer
from data.demo.geometry import FloatArray, Geoms, IntArray
from data.demo.land_use import SCHOOL, Slots
from data.demo.names import SCHOOL_PATTERNS, StrArray, cn_numbers, join, numbered
from data.demo.roads import Roads

FIRST_TYPES = (
    "primary",
    "kindergarten",
    "middle",
    "primary",
    "high",
    "nine_year",
    "vocational",
    "special",
)
"""The first eight schools cover every school type (and two primary schools)."""
LATER_TYPES = ("kindergarten", "primary", "middle", "high", "nine_year", "vocational", "special")
LATER_SHARES = (0.30, 0.38, 0.16, 0.07, 0.05, 0.02, 0.02)
CAMPUS_SHARE = {
    "kindergarten": 0.5,
    "primary": 0.8,
    "middle": 0.9,
    "high": 1.0,
    "nine_year": 1.0,
    "vocational": 0.9,
    "special": 0.6,
}
"""Campus side as a share of its slot's side (a slot is ~215 m square)."""


@dataclass(frozen=True)
class Schools:
    """Campuses in metres with their main gate, the road it faces, and names."""

    slot: IntArray
    school_type: StrArray
    codes: StrArray
    names: StrArray
    addresses: StrArray
    geoms: Geoms
    gate_x: FloatArray
    gate_y: FloatArray
    road_x: FloatArray
    """The point of the road centre line straight out from the main gate."""
    road_y: FloatArray
    road: IntArray
    """The road piece the main gate faces."""
    side_gate_x: FloatArray
    side_gate_y: FloatArray
    has_side_gate: np.ndarray

    def __len__(self) -> int:
        return len(self.slot)

    def layer(self) -> Layer:
        """The schools layer."""
        return Layer(
            self.codes,
            {"name": self.names, "school_type": self.school_type, "address": self.addresses},
            self.geoms,
        )


def build_schools(slots: Slots, roads: Roads, rng: np.random.Generator) -> Schools:
    """One campus per school slot; types first cover every kind, then follow typical shares."""
    slot = np.flatnonzero(slots.use == SCHOOL).astype(np.int64)
    n = len(slot)
    kind = rng.choice(len(LATER_TYPES), n, p=LATER_SHARES).astype(np.int64)
    first = min(n, len(FIRST_TYPES))
    kind[:first] = [LATER_TYPES.index(t) for t in FIRST_TYPES[:first]]
    types = np.asarray(LATER_TYPES, dtype=np.str_)[kind]
    share = np.array([CAMPUS_SHARE[t] for t in LATER_TYPES])[kind]

    qx, qy = slots.qx[slot], slots.qy[slot]
    # Campus anchored at the slot's outer corner: its outer edges face the block's roads.
    s0 = np.where(qx == 0, 0.0, 1.0 - share)
    s1 = np.where(qx == 0, share, 1.0)
    t0 = np.where(qy == 0, 0.0, 1.0 - share)
    t1 = np.where(qy == 0, share, 1.0)
    geoms = slots.rects(slot, s0, s1, t0, t1)
    s_outer = np.where(qx == 0, s0, s1)
    gate_x, gate_y = slots.point(slot, s_outer, (t0 + t1) / 2)
    _, v_mid = slots.to_block(slot, s_outer, (t0 + t1) / 2)
    bi, bj = slots.bi[slot], slots.bj[slot]
    road_x, road_y = slots.lattice.point(bi, bj, qx.astype(np.float64), v_mid)
    road = roads.vertical_piece[bi + qx, bj]
    side_x, side_y = slots.point(slot, (s0 + s1) / 2, np.where(qy == 0, t0, t1))

    rank = np.zeros(n, dtype=np.int64)
    names = np.empty(n, dtype=object)
    for school_type, (prefix, suffix) in SCHOOL_PATTERNS.items():
        mine = np.flatnonzero(types == school_type)
        rank[mine] = np.arange(1, len(mine) + 1)
        names[mine] = join(prefix, cn_numbers(rank[mine]), suffix) if len(mine) else []
    number = rng.integers(1, 400, n).astype(np.str_)
    return Schools(
        slot=slot,
        school_type=types,
        codes=numbered("SCH", n),
        names=names.astype(np.str_),
        addresses=join("西安区", roads.names[road], number, "号"),
        geoms=geoms,
        gate_x=gate_x,
        gate_y=gate_y,
        road_x=road_x,
        road_y=road_y,
        road=road,
        side_gate_x=side_x,
        side_gate_y=side_y,
        has_side_gate=rng.random(n) < 0.5,
    )
