"""Dates and times of the demo, all relative to the fixed REFERENCE_DATE.

A fixed 'today' keeps a seed's city identical on every run, and makes the overdue list
and inspection ages of the demo predictable for tests and screenshots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from data.demo.scales import REFERENCE_DATE

Days = NDArray[np.datetime64]
Objects = NDArray[np.object_]

TODAY = np.datetime64(REFERENCE_DATE.isoformat(), "D")
LOCAL_TZ = "Asia/Shanghai"


def days_before(rng: np.random.Generator, n: int, low: int, high: int) -> Days:
    """n days between `high` and `low` days before the reference date (inclusive)."""
    out: Days = TODAY - rng.integers(low, high + 1, n).astype("timedelta64[D]")
    return out


def as_dates(days: Days) -> Objects:
    """datetime.date objects (None for NaT): what a DATE column holds, as read from PostGIS."""
    out: Objects = np.asarray(days, dtype="datetime64[D]").astype(object)
    return out


def inspection_times(rng: np.random.Generator, n: int, within_days: int = 60) -> pd.DatetimeIndex:
    """Patrol times in working hours (08:00-17:59 local) over the last `within_days` days, UTC."""
    day = days_before(rng, n, 1, within_days).astype("datetime64[s]")
    seconds = rng.integers(8 * 3600, 18 * 3600, n).astype("timedelta64[s]")
    local = pd.DatetimeIndex(day + seconds).tz_localize(LOCAL_TZ)
    return local.tz_convert("UTC")
