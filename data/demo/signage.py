"""Public signage (公益广告与宣传牌): boards in compounds, at gates, at schools, along main roads.

Seed 003's quotas are the story: a few model compounds carry 10-14 boards (meeting the
compound quota of 10), most carry 0-2 (under it); boards cluster at gates, where people
walk through; main roads get a civility ad every 180 m (the county rule asks one per
200 m).  Communities mostly reach the 20 fixed boards of seed 003, except one laggard
community capped at 12 boards, which the quota check must name.
"""

from __future__ import annotations

import numpy as np
import shapely

from data.demo.compounds import Compounds
from data.demo.frames import Layer
from data.demo.geometry import Lattice, expand, locate
from data.demo.grids import Hierarchy
from data.demo.land_use import Slots
from data.demo.names import digits, join, numbered
from data.demo.roads import Roads, style_values
from data.demo.scales import DISTRICT_CODE
from data.demo.schools import Schools
from data.demo.timeline import as_dates, days_before
from layers.catalog import SIGNAGE

KINDS = ("core_values", "civility_ad", "no_smoking", "good_deeds", "bulletin_board", "other")
KIND_SHARES = (0.30, 0.25, 0.10, 0.10, 0.20, 0.05)
MODEL_SHARE = 0.07
ROAD_AD_SPACING_M = 180.0
LAGGARD_CAP = 12


def build_signage(
    lattice: Lattice,
    h: Hierarchy,
    roads: Roads,
    slots: Slots,
    compounds: Compounds,
    schools: Schools,
    rng: np.random.Generator,
) -> Layer:
    """The signage layer."""
    nc = len(compounds)
    community = h.block_community[slots.block[compounds.slot]]
    laggard = int(rng.integers(0, len(h.communities)))
    eligible = np.flatnonzero(community != laggard)
    model = np.zeros(nc, dtype=bool)
    model[rng.choice(eligible, min(len(eligible), max(3, round(MODEL_SHARE * nc))), False)] = True
    count = np.where(model, rng.integers(10, 15, nc), rng.integers(0, 3, nc)).astype(np.int64)
    owner, _ = expand(count)
    m = len(owner)
    slot = compounds.slot[owner]
    # Half at the main gate (4-15 m inside), half along the gaps between building rows.
    at_gate = rng.random(m) < 0.5
    ix = compounds.centre_x[owner] - compounds.main_gate_x[owner]
    iy = compounds.centre_y[owner] - compounds.main_gate_y[owner]
    norm = np.hypot(ix, iy)
    inside = rng.uniform(4.0, 15.0, m) / norm
    along = rng.uniform(-8.0, 8.0, m) / norm
    gx = compounds.main_gate_x[owner] + ix * inside - iy * along
    gy = compounds.main_gate_y[owner] + iy * inside + ix * along
    rows = compounds.rows[owner]
    k = rng.integers(0, rows)
    t = np.where(k > 0, k / rows, 0.04)
    px, py = slots.point(slot, rng.uniform(0.05, 0.95, m), t)
    cx, cy = np.where(at_gate, gx, px), np.where(at_gate, gy, py)

    # One core-values board 5 m inside each school's main gate.
    sx_dir = schools.road_x - schools.gate_x
    sy_dir = schools.road_y - schools.gate_y
    s_norm = np.hypot(sx_dir, sy_dir)
    sx = schools.gate_x - 5.0 * sx_dir / s_norm
    sy = schools.gate_y - 5.0 * sy_dir / s_norm

    # Civility ads along main roads.
    main = np.flatnonzero(roads.road_class == "main")
    lengths = roads.lines.lengths()[main]
    per_road = np.floor(lengths / ROAD_AD_SPACING_M).astype(np.int64)
    which, j = expand(per_road)
    piece = main[which]
    offset = style_values("kerb_offset_m")[roads.class_index[piece]] + 2.5
    at = ((j + 0.5) * ROAD_AD_SPACING_M).astype(np.float64)
    ax, ay, _, _ = roads.lines.along(piece, at, offset)

    x = np.concatenate([cx, sx, ax])
    y = np.concatenate([cy, sy, ay])
    n = len(x)
    kind = np.asarray(KINDS, dtype=np.str_)[rng.choice(len(KINDS), n, p=KIND_SHARES)]
    kind[m : m + len(schools)] = "core_values"
    kind[m + len(schools) :] = np.where(rng.random(len(ax)) < 0.7, "civility_ad", "core_values")

    # The laggard community keeps at most LAGGARD_CAP boards.
    where = h.block_community[np.maximum(locate(lattice.blocks(), x, y), 0)]
    mine = np.flatnonzero(where == laggard)
    drop = rng.permutation(mine)[LAGGARD_CAP:]
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    x, y, kind = x[keep], y[keep], kind[keep]
    n = len(x)

    condition = np.asarray(["good", "damaged", "missing"])[rng.choice(3, n, p=[0.94, 0.04, 0.02])]
    assert SIGNAGE.component_class is not None
    return Layer(
        numbered("S", n),
        {
            "component_code": join(
                DISTRICT_CODE, SIGNAGE.component_class, digits(np.arange(1, n + 1), 6)
            ),
            "kind": kind,
            "fixed": rng.random(n) < 0.92,
            "condition": condition,
            "installed_on": as_dates(days_before(rng, n, 1, 8 * 365)),
        },
        shapely.points(x, y),
    )
