"""A 100,000-waypoint GPX is read, validated and converted in one vectorised pass."""

from __future__ import annotations

import dataclasses
import gc
import pickle
import time

import numpy as np
import pytest

from data.crs import gcj02_to_wgs84
from data.field import FieldPoint, InvalidUpload
from data.field.model import new_point
from tests.data.field.samples import big_gpx, read

N = 100_000
# A guard against accidental per-point quadratic work, not the target: the target (< 2 s on
# an idle 2-core machine) is measured and reported by hand, because CI shares the machine.
CPU_BUDGET_S = 12.0


@pytest.mark.slow
def test_100k_waypoints_in_gcj02() -> None:
    raw = big_gpx(N)
    wall, cpu = time.perf_counter(), time.process_time()
    up = read(raw, "big.gpx", crs="GCJ-02")
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    print(f"\n{N} waypoints, {len(raw) / 1e6:.1f} MB: {cpu:.2f} s CPU, {wall:.2f} s wall")
    assert len(up.points) == N and up.refused == []
    assert [p.row for p in up.points[:3]] == [1, 2, 3] and up.points[-1].row == N
    sample = up.points[:: N // 100]
    lon, lat = gcj02_to_wgs84([p.orig_x for p in sample], [p.orig_y for p in sample])
    assert np.allclose([p.lon for p in sample], lon, atol=0, rtol=0)
    assert np.allclose([p.lat for p in sample], lat, atol=0, rtol=0)
    assert all(p.kind == "lamp_unlit" and p.accuracy_m is not None for p in sample)
    assert cpu < CPU_BUDGET_S


def test_the_garbage_collector_is_paused_only_while_reading() -> None:
    assert gc.isenabled()
    read(big_gpx(10), "small.gpx")
    assert gc.isenabled()
    with pytest.raises(InvalidUpload):
        read(b"<gpx><wpt", "cut.gpx")
    assert gc.isenabled()
    gc.disable()
    try:
        read(big_gpx(10), "small.gpx")
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_points_built_the_fast_way_are_ordinary_frozen_field_points() -> None:
    values: tuple[object, ...] = (3, 129.6, 44.58, 129.6, 44.58, "EPSG:4326", None, 1.0, 2.0)
    values += (0.4, None, None, 7, "n", None, "lamp_unlit", None, {"hr": 90}, None)
    fast, slow = new_point(*values), FieldPoint(*values)  # type: ignore[arg-type]
    assert type(fast) is FieldPoint and fast == slow and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.lat = 0.0  # type: ignore[misc]
    assert dataclasses.replace(fast, lat=1.0).lat == 1.0
    assert pickle.loads(pickle.dumps(fast)) == slow
