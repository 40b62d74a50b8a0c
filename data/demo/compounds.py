"""Residential compounds (小区) and other walled compounds, their buildings and their gates.

Buildings stand in rows (slab blocks facing south, as in northern Chinese cities) inside
their compound's slot; gates and doors sit on edge midpoints, which are polygon vertices,
so every entrance lies exactly on its owner's boundary.  The row layout is kept because
bins, signs, lamps and illegal structures go into the gaps between the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.demo.frames import Layer
from data.demo.geometry import FloatArray, Geoms, IntArray, expand
from data.demo.land_use import OTHER_COMPOUND, RESIDENTIAL, Slots
from data.demo.names import (
    COMPOUND_SUFFIXES,
    COMPOUND_WORDS,
    NON_RESIDENTIAL_SUFFIXES,
    StrArray,
    join,
    numbered,
    pick,
)
from data.demo.roads import Roads

FLOORS = (6, 7, 11, 18, 26, 33)
FLOOR_SHARES = (0.40, 0.12, 0.16, 0.16, 0.10, 0.06)
HOUSEHOLDS_PER_UNIT_FLOOR = 2


@dataclass(frozen=True)
class Gates:
    """Entrances of one owner layer, in metres."""

    owner: IntArray
    x: FloatArray
    y: FloatArray
    kind: StrArray
    names: StrArray


@dataclass(frozen=True)
class Compounds:
    """Compounds, with their building rows and gates."""

    slot: IntArray
    codes: StrArray
    names: StrArray
    residential: np.ndarray
    households: IntArray
    addresses: StrArray
    rows: IntArray
    geoms: Geoms
    gates: Gates
    """Gate 0 of each compound (the first listed for it) is its main gate."""
    main_gate_x: FloatArray
    main_gate_y: FloatArray
    centre_x: FloatArray
    centre_y: FloatArray

    def __len__(self) -> int:
        return len(self.slot)

    def layer(self) -> Layer:
        """The compounds layer."""
        return Layer(
            self.codes,
            {
                "name": self.names,
                "residential": self.residential,
                "households": self.households,
                "address": self.addresses,
            },
            self.geoms,
        )


@dataclass(frozen=True)
class Buildings:
    """Building footprints in metres, with the compound each stands in and its door."""

    compound: IntArray
    codes: StrArray
    names: StrArray
    residential: np.ndarray
    households: IntArray
    floors: IntArray
    geoms: Geoms
    door_x: FloatArray
    door_y: FloatArray
    centre_x: FloatArray
    centre_y: FloatArray

    def __len__(self) -> int:
        return len(self.compound)

    def layer(self, compound_codes: StrArray) -> Layer:
        """The buildings layer."""
        return Layer(
            self.codes,
            {
                "name": self.names,
                "compound_code": compound_codes[self.compound],
                "residential": self.residential,
                "households": self.households,
                "floors": self.floors,
            },
            self.geoms,
        )


def _address_roads(slots: Slots, slot: IntArray, roads: Roads) -> IntArray:
    """The road a compound's address is on: its outer west/east road, else south/north, else
    the road on the far side of its block."""
    bi, bj, qx, qy = slots.bi[slot], slots.bj[slot], slots.qx[slot], slots.qy[slot]
    road = roads.vertical_piece[bi + qx, bj]
    road = np.where(road >= 0, road, roads.horizontal_piece[bi, bj + qy])
    out: IntArray = np.where(road >= 0, road, roads.vertical_piece[bi + 1 - qx, bj])
    return out


def build_compounds(
    slots: Slots, roads: Roads, rng: np.random.Generator
) -> tuple[Compounds, Buildings]:
    """Compounds in their slots and 1-8 buildings each, in rows."""
    slot = np.flatnonzero((slots.use == RESIDENTIAL) | (slots.use == OTHER_COMPOUND))
    slot = slot.astype(np.int64)
    n = len(slot)
    residential = slots.use[slot] == RESIDENTIAL
    rows = np.where(
        residential, rng.choice([2, 3, 4], n, p=[0.3, 0.4, 0.3]), rng.choice([1, 2], n)
    ).astype(np.int64)
    cols = np.where(residential, rng.choice([1, 2], n, p=[0.35, 0.65]), 1).astype(np.int64)

    # Building rows: a template of 4 x 2 places per compound, masked by rows and columns.
    compound, place = expand(np.full(n, 8, dtype=np.int64))
    r, c = place // 2, place % 2
    keep = (r < rows[compound]) & (c < cols[compound])
    compound, r, c = compound[keep], r[keep], c[keep]
    bslot = slot[compound]
    res_b = residential[compound]
    two = cols[compound] == 2
    s_mid = np.where(two, np.where(c == 0, 0.27, 0.73), 0.5)
    s_half = np.where(res_b, np.where(two, 0.16, 0.2), 0.3)
    t_mid = (r + 0.5) / rows[compound]
    t_half = np.where(res_b, 0.035, np.where(rows[compound] == 1, 0.12, 0.1))
    geoms = slots.rects(bslot, s_mid - s_half, s_mid + s_half, t_mid - t_half, t_mid + t_half)
    door_x, door_y = slots.point(bslot, s_mid, t_mid - t_half)
    centre_x, centre_y = slots.point(bslot, s_mid, t_mid)
    nb = len(compound)
    floors = np.where(
        res_b, rng.choice(FLOORS, nb, p=FLOOR_SHARES), rng.integers(3, 25, nb)
    ).astype(np.int64)
    units = np.where(two, rng.integers(2, 4, nb), rng.integers(3, 5, nb))
    households = np.where(res_b, floors * units * HOUSEHOLDS_PER_UNIT_FLOOR, 0).astype(np.int64)
    _, rank = expand(np.bincount(compound, minlength=n))
    buildings = Buildings(
        compound=compound,
        codes=numbered("BLD", nb),
        names=join((rank + 1).astype(np.str_), "号楼"),
        residential=res_b,
        households=households,
        floors=floors,
        geoms=geoms,
        door_x=door_x,
        door_y=door_y,
        centre_x=centre_x,
        centre_y=centre_y,
    )

    names = join(
        pick(rng, COMPOUND_WORDS, n),
        np.where(
            residential,
            pick(rng, COMPOUND_SUFFIXES, n),
            pick(rng, NON_RESIDENTIAL_SUFFIXES, n),
        ),
    )
    gates = _gates(slots, slot, names, rng)
    main = np.flatnonzero(gates.kind == "main")
    cx, cy = slots.point(slot, np.full(n, 0.5), np.full(n, 0.5))
    road = _address_roads(slots, slot, roads)
    number = rng.integers(1, 600, n).astype(np.str_)
    compounds = Compounds(
        slot=slot,
        codes=numbered("XQ", n),
        names=names,
        residential=residential,
        households=np.bincount(compound, weights=households, minlength=n).astype(np.int64),
        addresses=join("西安区", roads.names[road], number, "号"),
        rows=rows,
        geoms=slots.rects(slot, np.zeros(n), np.ones(n), np.zeros(n), np.ones(n)),
        gates=gates,
        main_gate_x=gates.x[main],
        main_gate_y=gates.y[main],
        centre_x=cx,
        centre_y=cy,
    )
    return compounds, buildings


def _gates(slots: Slots, slot: IntArray, names: StrArray, rng: np.random.Generator) -> Gates:
    """Main gate on the outer west/east edge; often a vehicle gate on the outer south/north
    edge; sometimes a pedestrian gate on the inner edge (towards a back street)."""
    n = len(slot)
    qx, qy = slots.qx[slot], slots.qy[slot]
    half = np.full(n, 0.5)
    outer_s = qx.astype(np.float64)
    outer_t = qy.astype(np.float64)
    side = np.array(["西门", "东门"])
    end = np.array(["南门", "北门"])
    options = [
        (np.ones(n, dtype=bool), outer_s, half, "main", side[qx]),
        (rng.random(n) < 0.6, half, outer_t, "vehicle", end[qy]),
        (rng.random(n) < 0.3, 1.0 - outer_s, half, "pedestrian", side[1 - qx]),
    ]
    owner: list[IntArray] = []
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    kinds: list[StrArray] = []
    labels: list[StrArray] = []
    for present, s, t, kind, label in options:
        idx = np.flatnonzero(present).astype(np.int64)
        x, y = slots.point(slot[idx], s[idx], t[idx])
        owner.append(idx)
        xs.append(x)
        ys.append(y)
        kinds.append(np.full(len(idx), kind))
        labels.append(join(names[idx], label[idx]))
    order = np.argsort(np.concatenate(owner), kind="stable")
    return Gates(
        owner=np.concatenate(owner)[order],
        x=np.concatenate(xs)[order],
        y=np.concatenate(ys)[order],
        kind=np.concatenate(kinds)[order],
        names=np.concatenate(labels)[order],
    )
