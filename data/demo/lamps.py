"""Street lamps (路灯): evenly spaced along every road, plus a few lamps inside compounds.

Spacing on each side never exceeds the class's allowed spacing (factor x pole height of the
default profile), so the spacing check finds exactly the planted gaps: stretches of 150 m
with no lamp on either side, longer than 4 x the tallest pole.  4 % of lamps are unlit
(inside the 3-6 % a demo needs), mostly in a third of the communities, which fall below
the 96 % 亮灯率 while the others pass; one run of dark lamps on one road (a failed
circuit) and one dark stairwell lamp (the stairwell rate must be 100 %).
"""

from __future__ import annotations

import numpy as np
import shapely

from data.demo.compounds import Buildings, Compounds
from data.demo.frames import Layer
from data.demo.geometry import FloatArray, IntArray, Lattice, expand, locate
from data.demo.grids import Hierarchy
from data.demo.land_use import Slots
from data.demo.names import digits, join, numbered
from data.demo.roads import CLASSES, STYLES, Roads, style_values
from data.demo.scales import DISTRICT_CODE
from data.demo.timeline import inspection_times
from layers.catalog import STREET_LAMPS

MARGIN_M = 8.0
"""First and last lamp stand this far from the road's ends (the junction)."""
GAP_M = 150.0
"""Length of a planted stretch without lamps: > 4 x 12 m, the tallest pole."""
UNLIT_SHARE = 0.04
DARK_COMMUNITY_SHARE = 1 / 3
DARK_COMMUNITY_WEIGHT = 4.0
"""Unlit lamps are this much likelier in the dark third of communities: ~8 % there, ~2 %
elsewhere, so the per-community 亮灯率 ranking has both passes and failures."""
DAMAGED_SHARE = 0.007
MISSING_SHARE = 0.003
DARK_RUN = 8
"""Consecutive unlit lamps on one road: a failed circuit."""
STAIRWELL_SHARE = 0.03
CORRIDOR_SHARE = 0.015
COMPOUND_LIGHTING_SHARE = 0.04


def _road_lamps(
    roads: Roads, rng: np.random.Generator
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray, np.ndarray]:
    """Piece, side, x, y, pole height and light distribution of road lamps."""
    lengths = roads.lines.lengths()
    cls = roads.class_index
    spacing = style_values("lamp_spacing_m")[cls]
    both = np.array([STYLES[c].lamp_both_sides for c in CLASSES])[cls]
    usable = np.maximum(lengths - 2 * MARGIN_M, 1.0)
    per_side = (np.ceil(usable / spacing) + 1).astype(np.int64)
    piece, k = expand(per_side * np.where(both, 2, 1))
    side, pos = np.divmod(k, per_side[piece])
    dist = MARGIN_M + pos * usable[piece] / (per_side[piece] - 1)
    one_side = rng.choice([-1.0, 1.0], len(roads))
    sign = np.where(both[piece], np.where(side == 0, 1.0, -1.0), one_side[piece])
    x, y, _, _ = roads.lines.along(piece, dist, sign * style_values("kerb_offset_m")[cls[piece]])

    height = np.zeros(len(roads))
    for c, name in enumerate(CLASSES):
        mine = np.flatnonzero(cls == c)
        height[mine] = rng.choice(STYLES[name].pole_heights_m, len(mine))
    distribution = np.array([STYLES[c].distribution for c in CLASSES])[cls]

    # Planted gaps: a 150 m stretch of a few roads with no lamp on either side.
    candidates = np.flatnonzero(lengths > GAP_M + 2 * MARGIN_M + 100.0)
    gap_roads = rng.choice(candidates, min(len(candidates), max(3, len(roads) // 15)), False)
    gap_start = np.full(len(roads), np.nan)
    gap_start[gap_roads] = rng.uniform(
        MARGIN_M + 40.0, lengths[gap_roads] - MARGIN_M - 40.0 - GAP_M
    )
    keep = ~((dist >= gap_start[piece]) & (dist <= gap_start[piece] + GAP_M))
    return (
        piece[keep],
        side[keep],
        x[keep],
        y[keep],
        height[piece][keep],
        distribution[piece][keep],
    )


def build_lamps(
    lattice: Lattice,
    h: Hierarchy,
    roads: Roads,
    slots: Slots,
    compounds: Compounds,
    buildings: Buildings,
    rng: np.random.Generator,
) -> Layer:
    """The street_lamps layer."""
    piece, side, x, y, height, distribution = _road_lamps(roads, rng)
    n_road = len(piece)

    # Stairwell lamps just outside a door, corridor lamps inside the building.
    res = np.flatnonzero(buildings.residential)
    stair = np.sort(rng.choice(res, max(1, round(STAIRWELL_SHARE * len(res))), replace=False))
    corridor = np.sort(rng.choice(res, max(1, round(CORRIDOR_SHARE * len(res))), replace=False))
    out_x = buildings.door_x - buildings.centre_x
    out_y = buildings.door_y - buildings.centre_y
    out_len = np.hypot(out_x, out_y)
    sx = buildings.door_x[stair] + 1.5 * out_x[stair] / out_len[stair]
    sy = buildings.door_y[stair] + 1.5 * out_y[stair] / out_len[stair]
    cx = buildings.centre_x[corridor] + 0.5 * out_x[corridor]
    cy = buildings.centre_y[corridor] + 0.5 * out_y[corridor]
    # Compound lighting: four lamps along the first gap between building rows.
    rowed = np.flatnonzero(compounds.residential & (compounds.rows >= 2))
    lit_compounds = np.sort(
        rng.choice(rowed, max(1, round(COMPOUND_LIGHTING_SHARE * len(rowed))), replace=False)
    )
    owner, k = expand(np.full(len(lit_compounds), 4, dtype=np.int64))
    mx, my = slots.point(
        compounds.slot[lit_compounds[owner]],
        np.array([0.15, 0.38, 0.62, 0.85])[k],
        1.0 / compounds.rows[lit_compounds[owner]],
    )

    placement = np.concatenate(
        [
            np.full(n_road, "road"),
            np.full(len(stair), "stairwell"),
            np.full(len(corridor), "corridor"),
            np.full(len(mx), "compound"),
        ]
    )
    n = len(placement)
    if n >= 10**6:
        raise ValueError("component serials have 6 digits: at most 999,999 lamps")

    # Status: exact shares; the dark run and one stairwell lamp are among the unlit, and the
    # rest of the unlit lamps are four times as likely in a third of the communities.
    long_side = np.flatnonzero(np.bincount(piece[side == 0], minlength=len(roads)) >= 2 * DARK_RUN)
    dark_road = rng.choice(long_side)
    run = np.flatnonzero((piece == dark_road) & (side == 0))[:DARK_RUN]
    forced = np.concatenate([run, [n_road]])
    rest = np.setdiff1d(np.arange(n), forced)
    x_all = np.concatenate([x, sx, cx, mx])
    y_all = np.concatenate([y, sy, cy, my])
    community = h.block_community[np.maximum(locate(lattice.blocks(), x_all, y_all), 0)]
    n_comm = len(h.communities)
    dark = rng.choice(n_comm, max(1, round(DARK_COMMUNITY_SHARE * n_comm)), replace=False)
    weight = np.where(np.isin(community[rest], dark), DARK_COMMUNITY_WEIGHT, 1.0)
    # Weighted order without replacement: sort by exponential keys (Efraimidis-Spirakis).
    keys = rng.exponential(1.0, len(rest)) / weight
    priority = np.concatenate([forced, rest[np.argsort(keys, kind="stable")]])
    n_unlit = round(UNLIT_SHARE * n)
    n_damaged = max(2, round(DAMAGED_SHARE * n))
    n_missing = max(1, round(MISSING_SHARE * n))
    status = np.full(n, "lit", dtype="<U8")
    status[priority[:n_unlit]] = "unlit"
    status[priority[n_unlit : n_unlit + n_damaged]] = "damaged"
    status[priority[n_unlit + n_damaged : n_unlit + n_damaged + n_missing]] = "missing"

    road_code = np.concatenate([roads.codes[piece], np.full(n - n_road, "")]).astype(object)
    road_code[n_road:] = None
    light = np.concatenate(
        [distribution, np.full(len(stair) + len(corridor), ""), np.full(len(mx), "non_cut_off")]
    ).astype(object)
    light[light == ""] = None
    pole = np.concatenate([height, np.full(len(stair) + len(corridor), 2.8), np.full(len(mx), 4.5)])
    assert STREET_LAMPS.component_class is not None
    return Layer(
        numbered("L", n),
        {
            "component_code": join(
                DISTRICT_CODE,
                STREET_LAMPS.component_class,
                digits(np.arange(1, n + 1, dtype=np.int64), 6),
            ),
            "road_code": road_code,
            "placement": placement,
            "pole_height_m": pole,
            "light_distribution": light,
            "status": status,
            "last_inspected": inspection_times(rng, n),
        },
        shapely.points(x_all, y_all),
    )
