"""Illegal structures (违法建设): sheds of 20-400 m² in the gaps between residential rows.

Every status of the lifecycle appears, and the dates agree with the status (a deadline
once verified; demolished_on only once demolished; restored_on only once the site is
restored; nothing after the reference date).  At least one structure with a served notice
is overdue at the reference date, so the overdue list is never empty.
"""

from __future__ import annotations

import numpy as np
import shapely

from data.demo.compounds import Compounds
from data.demo.frames import Layer
from data.demo.land_use import Slots
from data.demo.names import SURNAMES, join, numbered, pick
from data.demo.timeline import TODAY, as_dates

STATUSES = (
    "reported",
    "verified",
    "notice_served",
    "demolished",
    "site_restored",
    "legalised",
    "rejected",
)
STATUS_SHARES = (0.15, 0.15, 0.25, 0.20, 0.10, 0.08, 0.07)
AREA_M2 = (25.0, 380.0)
"""Drawn inside 20-400 m², with room for the projection's scale factor."""
WITH_DEADLINE = ("verified", "notice_served", "demolished", "site_restored", "legalised")
DEMOLISHED = ("demolished", "site_restored")


def build_illegal_buildings(
    n: int, slots: Slots, compounds: Compounds, rng: np.random.Generator
) -> Layer:
    """The illegal_buildings layer: `n` sheds in random residential compounds."""
    rowed = np.flatnonzero(compounds.residential & (compounds.rows >= 2))
    where = rng.choice(rowed, n, replace=n > len(rowed))
    rows = compounds.rows[where]
    gap = rng.integers(1, rows)  # between row gap-1 and row gap
    cx, cy = slots.point(compounds.slot[where], rng.uniform(0.2, 0.8, n), gap / rows)
    area = rng.uniform(*AREA_M2, n)
    aspect = rng.uniform(1.0, 2.5, n)
    depth = np.sqrt(area / aspect)  # across the gap: at most ~19.5 m of a >= 38 m gap
    width = area / depth
    geoms = shapely.box(cx - width / 2, cy - depth / 2, cx + width / 2, cy + depth / 2)

    status = np.asarray(STATUSES, dtype=np.str_)[rng.choice(len(STATUSES), n, p=STATUS_SHARES)]
    status[: min(n, len(STATUSES))] = np.asarray(STATUSES[: min(n, len(STATUSES))])
    discovered = TODAY - rng.integers(10, 420, n).astype("timedelta64[D]")
    if n > 2:
        # An overdue case for the list: notice served four months ago, deadline two ago.
        status[2] = "notice_served"
        discovered[2] = TODAY - np.timedelta64(120, "D")
    deadline = discovered + rng.integers(7, 46, n).astype("timedelta64[D]")
    if n > 2:
        deadline[2] = TODAY - np.timedelta64(60, "D")
    deadline[~np.isin(status, WITH_DEADLINE)] = np.datetime64("NaT")
    demolished = np.minimum(
        discovered + rng.integers(3, 61, n).astype("timedelta64[D]"), TODAY - np.timedelta64(1, "D")
    )
    demolished[~np.isin(status, DEMOLISHED)] = np.datetime64("NaT")
    restored = np.minimum(demolished + rng.integers(3, 31, n).astype("timedelta64[D]"), TODAY)
    restored[status != "site_restored"] = np.datetime64("NaT")
    owner = np.where(rng.random(n) < 0.7, "某", "某某")
    return Layer(
        numbered("WJ", n),
        {
            "status": status,
            "address": compounds.addresses[where],
            "owner": join(pick(rng, SURNAMES, n), owner),
            "discovered_on": as_dates(discovered),
            "deadline": as_dates(deadline),
            "demolished_on": as_dates(demolished),
            "restored_on": as_dates(restored),
        },
        geoms,
    )
