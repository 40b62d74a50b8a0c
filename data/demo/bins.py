"""Bins (垃圾箱): litter bins along roads, collection and sorting points among the buildings.

Road bins keep within the CJJ 27 spacing of their class except at a few planted gaps (two
bins missing in a row).  Collection points stand in the gaps between building rows so that
each covers the rows within 70 m; in about one compound in eight a point is missing, which
leaves its far rows outside the service radius for the coverage check to show.  Condition
is good for 99 % of bins, but one community has let a fifth of its bins go, which the
per-community 完好率 check must single out while the district stays above 95 %.
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
from data.demo.timeline import inspection_times
from layers.catalog import BINS

END_MARGIN_M = 15.0
KERB_EXTRA_M = 1.5
UNDERSERVED_SHARE = 0.12
BAD_SHARE = 0.01
WEAK_BAD_SHARE = 0.20
MAX_BAD_SHARE = 0.045
"""Cap that keeps the district's 完好率 at >= 95 % whatever the weak community's size."""
BAD_CONDITIONS = ("damaged", "missing", "overflowing")


def build_bins(
    lattice: Lattice,
    h: Hierarchy,
    roads: Roads,
    slots: Slots,
    compounds: Compounds,
    rng: np.random.Generator,
) -> Layer:
    """The bins layer."""
    # Along roads, one side.
    lengths = roads.lines.lengths()
    cls = roads.class_index
    usable = np.maximum(lengths - 2 * END_MARGIN_M, 1.0)
    count = (np.ceil(usable / style_values("bin_spacing_m")[cls]) + 1).astype(np.int64)
    piece, pos = expand(count)
    dist = END_MARGIN_M + pos * usable[piece] / (count[piece] - 1)
    sign = rng.choice([-1.0, 1.0], len(roads))[piece]
    offset = sign * (style_values("kerb_offset_m")[cls[piece]] + KERB_EXTRA_M)
    rx, ry, _, _ = roads.lines.along(piece, dist, offset)
    gap_roads = rng.choice(
        np.flatnonzero(count >= 6), min(int((count >= 6).sum()), max(2, len(roads) // 20)), False
    )
    gap_at = np.full(len(roads), -10, dtype=np.int64)
    gap_at[gap_roads] = rng.integers(1, count[gap_roads] - 3)
    keep = (pos != gap_at[piece]) & (pos != gap_at[piece] + 1)
    piece, rx, ry = piece[keep], rx[keep], ry[keep]
    road_kind = np.where(roads.road_class[piece] == "back_street", "closed_bin", "litter_bin")

    # Collection points between building rows; a closed bin inside other compounds' gates.
    res = np.flatnonzero(compounds.residential)
    rows = compounds.rows[res]
    points = np.where(rows == 2, 1, 2)
    points[rng.random(len(res)) < UNDERSERVED_SHARE] = 1
    owner, j = expand(points)
    r = rows[owner]
    gap = np.where(r == 3, j + 1, np.where(j == 0, 1, 3))
    cx, cy = slots.point(compounds.slot[res[owner]], np.full(len(owner), 0.5), gap / r)
    ckind = np.where(rng.random(len(owner)) < 0.55, "collection_point", "sorting_point")
    other = np.flatnonzero(~compounds.residential)
    ix = compounds.centre_x[other] - compounds.main_gate_x[other]
    iy = compounds.centre_y[other] - compounds.main_gate_y[other]
    step = 6.0 / np.hypot(ix, iy)
    ox = compounds.main_gate_x[other] + ix * step
    oy = compounds.main_gate_y[other] + iy * step

    x = np.concatenate([rx, cx, ox])
    y = np.concatenate([ry, cy, oy])
    kind = np.concatenate([road_kind, ckind, np.full(len(other), "closed_bin")])
    n = len(x)
    if n >= 10**6:
        raise ValueError("component serials have 6 digits: at most 999,999 bins")
    road_code = np.concatenate([roads.codes[piece], np.full(n - len(piece), "")]).astype(object)
    road_code[len(piece) :] = None

    community = h.block_community[np.maximum(locate(lattice.blocks(), x, y), 0)]
    weak = int(rng.integers(0, len(h.communities)))
    in_weak = np.flatnonzero(community == weak)
    elsewhere = np.flatnonzero(community != weak)
    bad_else = round(BAD_SHARE * len(elsewhere))
    bad_weak = min(round(WEAK_BAD_SHARE * len(in_weak)), int(MAX_BAD_SHARE * n) - bad_else)
    bad = np.concatenate(
        [
            rng.choice(in_weak, max(bad_weak, 0), replace=False),
            rng.choice(elsewhere, bad_else, replace=False),
        ]
    ).astype(np.int64)
    condition = np.full(n, "good", dtype="<U12")
    condition[bad] = np.asarray(BAD_CONDITIONS)[rng.choice(3, len(bad), p=[0.5, 0.2, 0.3])]
    assert BINS.component_class is not None
    return Layer(
        numbered("B", n),
        {
            "component_code": join(
                DISTRICT_CODE, BINS.component_class, digits(np.arange(1, n + 1), 6)
            ),
            "road_code": road_code,
            "kind": kind,
            "condition": condition,
            "last_inspected": inspection_times(rng, n),
        },
        shapely.points(x, y),
    )
