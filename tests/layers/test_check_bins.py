"""`bin-condition` and `bin-coverage` on exact fixtures whose answers are known.

Places are laid out in metres east/north of 129.60E 44.58N; the distances a
verdict turns on are built with pyproj.Geod.fwd from the nearest point of the
footprint and checked with Geod.inv, independently of PostGIS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point
from sqlalchemy import Engine

from layers.checks.bins import BinCondition, BinCoverage
from layers.checks.framework import parse_scope
from layers.profile import load_profile
from tests.geodesic_city import (
    COMMUNITY_B,
    GEOD,
    GRID_B,
    grids,
    lat,
    load,
    lon,
    near_path,
    rect,
)
from tests.tiny_city import COMMUNITY, GRID_EAST, GRID_WEST

# Every test runs on the near pairs the database keeps and again measuring them.
pytestmark = pytest.mark.usefixtures(near_path.__name__)

# --- bin-condition ---------------------------------------------------------


def bins_in_row(prefix: str, x0: float, conditions: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "code": f"{prefix}-{i:02d}",
            "kind": "litter_bin" if i % 2 else "closed_bin",
            "condition": c,
            "geometry": Point(lon(x0 + 5 * i), lat(50)),
        }
        for i, c in enumerate(conditions)
    ]


def condition(engine: Engine, scope: str = "all", **overrides: str) -> Any:
    rule = BinCondition()
    params = rule.parameters(load_profile(), overrides)
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), params)


def test_one_damaged_bin_in_twenty_is_95_percent_and_passes(engine: Engine, tmp_path: Path) -> None:
    load(
        engine,
        tmp_path,
        {"grids": grids(), "bins": bins_in_row("B", 10, ["good"] * 19 + ["damaged"])},
    )
    out = condition(engine)
    assert out.summary["bins"] == 20
    assert out.summary["rate"] == 0.95
    assert out.summary["threshold"] == 0.95
    assert out.passed is True
    assert [f["properties"]["code"] for f in out.evidence] == ["B-19"]
    reason = out.evidence[0]["properties"]["reason"]
    assert "破损" in reason and "damaged" in reason
    assert out.evidence[0]["geometry"]["type"] == "Point"


def test_two_bad_bins_in_twenty_fail_and_a_missing_bin_stays_in_the_denominator(
    engine: Engine, tmp_path: Path
) -> None:
    load(
        engine,
        tmp_path,
        {"grids": grids(), "bins": bins_in_row("B", 10, ["good"] * 18 + ["damaged", "missing"])},
    )
    out = condition(engine)
    assert (out.summary["bins"], out.summary["intact"], out.summary["rate"]) == (20, 18, 0.9)
    assert out.passed is False
    assert {f["properties"]["condition"] for f in out.evidence} == {"damaged", "missing"}
    # What-if: a city content with 90 %.
    assert condition(engine, condition_rate="0.9").passed is True


def test_overflowing_is_intact_by_default_and_damaged_when_the_city_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    load(
        engine,
        tmp_path,
        {
            "grids": grids(),
            "bins": bins_in_row("B", 10, ["good"] * 18 + ["overflowing", "damaged"]),
        },
    )
    out = condition(engine)
    assert out.summary["overflowing"] == 1
    assert out.summary["overflowing_counts_as"] == "intact"
    assert out.summary["rate"] == 0.95 and out.passed is True
    assert [f["properties"]["condition"] for f in out.evidence] == ["damaged"]
    strict = condition(engine, overflowing_is_damaged="true")
    assert strict.summary["rate"] == 0.9 and strict.passed is False
    assert sorted(f["properties"]["condition"] for f in strict.evidence) == [
        "damaged",
        "overflowing",
    ]
    assert "满溢" in next(
        f["properties"]["reason"]
        for f in strict.evidence
        if f["properties"]["condition"] == "overflowing"
    )


def test_condition_by_scope_and_by_unit(engine: Engine, tmp_path: Path) -> None:
    west = bins_in_row("W", 10, ["good"] * 20)  # grid west: 100 %
    east = bins_in_row("E", 210, ["good"] * 18 + ["damaged", "damaged"])  # grid east: 90 %
    load(engine, tmp_path, {"grids": grids(), "bins": west + east})
    assert condition(engine, f"grid:{GRID_WEST}").passed is True
    out = condition(engine, f"grid:{GRID_EAST}")
    assert (out.summary["bins"], out.summary["rate"], out.passed) == (20, 0.9, False)
    whole = condition(engine, f"community:{COMMUNITY}")
    assert whole.summary["bins"] == 40 and whole.summary["rate"] == 0.95 and whole.passed
    assert condition(engine, f"community:{COMMUNITY_B}").passed is None  # no bins: no verdict
    rule = BinCondition()
    params = rule.parameters(load_profile())
    with engine.connect() as conn:
        grid_level = rule.by_unit(conn, "grid", params)
        community_level = rule.by_unit(conn, "community", params)
    assert grid_level[GRID_WEST].figure == 1.0 and grid_level[GRID_WEST].passed is True
    assert grid_level[GRID_EAST].figure == 0.9 and grid_level[GRID_EAST].passed is False
    assert GRID_B not in grid_level
    assert community_level[COMMUNITY].figure == 0.95 and community_level[COMMUNITY].passed


# --- bin-coverage ----------------------------------------------------------


def south_of(x_mid: float, y_edge: float, metres: float) -> Point:
    """A point exactly `metres` (geodesic) due south of (x_mid, y_edge)."""
    lo, la, _ = GEOD.fwd(lon(x_mid), lat(y_edge), 180, metres)
    return Point(lo, la)


def bin_(code: str, kind: str, condition: str, geometry: Point) -> dict[str, Any]:
    return {"code": code, "kind": kind, "condition": condition, "geometry": geometry}


@pytest.fixture
def coverage_city(engine: Engine, tmp_path: Path) -> Engine:
    """BLD-NEAR 69.9 m and BLD-FAR 70.1 m from their collection points; decoys nearby."""
    near_point = south_of(60, 120, 69.9)  # BLD-NEAR spans x 50..70, y 120..140
    far_point = south_of(300, 120, 70.1)  # BLD-FAR spans x 290..310, y 120..140
    # Independent truth: Geod distance from each point to the middle of the south edge,
    # which is the nearest point of the footprint (the point lies due south of it).
    assert GEOD.inv(near_point.x, near_point.y, lon(60), lat(120))[2] == pytest.approx(
        69.9, abs=1e-6
    )
    assert GEOD.inv(far_point.x, far_point.y, lon(300), lat(120))[2] == pytest.approx(
        70.1, abs=1e-6
    )
    buildings = [
        {"code": "BLD-NEAR", "residential": True, "geometry": rect(50, 120, 70, 140)},
        {"code": "BLD-FAR", "residential": True, "geometry": rect(290, 120, 310, 140)},
        # Not residential: never counted, though nothing serves it.
        {"code": "BLD-SHOP", "residential": False, "geometry": rect(500, 150, 520, 170)},
        # Residential, in community B, 100 m from the nearest serving point.
        {"code": "BLD-B", "residential": True, "geometry": rect(450, 120, 470, 140)},
    ]
    bins = [
        bin_("CP-NEAR", "collection_point", "good", near_point),
        # Damaged still serves; it is the nearest serving point of BLD-FAR.
        bin_("CP-FAR", "sorting_point", "damaged", far_point),
        # Decoys right next to BLD-FAR that must not cover it:
        bin_("LB-1", "litter_bin", "good", south_of(300, 120, 3)),
        bin_("CP-GONE", "collection_point", "missing", south_of(295, 120, 5)),
        # 100 m due east of the middle of BLD-B's east edge, inside community B.
        bin_("CP-B", "collection_point", "good", Point(*GEOD.fwd(lon(470), lat(130), 90, 100)[:2])),
    ]
    load(engine, tmp_path, {"grids": grids(), "buildings": buildings, "bins": bins})
    return engine


def coverage(engine: Engine, scope: str = "all", **overrides: str) -> Any:
    rule = BinCoverage()
    params = rule.parameters(load_profile(), overrides)
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), params)


def test_a_building_699_m_away_is_covered_and_one_701_m_away_is_not(
    coverage_city: Engine,
) -> None:
    out = coverage(coverage_city)
    assert out.summary["service_radius_m"] == 70.0
    assert out.summary["residential_buildings"] == 3
    assert (out.summary["covered"], out.summary["uncovered"]) == (1, 2)
    assert out.summary["share"] == pytest.approx(1 / 3, abs=1e-6)
    assert out.passed is False
    by_code = {f["properties"]["code"]: f["properties"] for f in out.evidence}
    assert set(by_code) == {"BLD-FAR", "BLD-B"}
    far = by_code["BLD-FAR"]
    assert far["nearest_point"] == "CP-FAR"
    assert far["distance_m"] == pytest.approx(70.1, abs=0.01)
    assert "70.10" in far["reason"] and "70" in far["reason"]
    assert by_code["BLD-B"]["nearest_point"] == "CP-B"
    assert by_code["BLD-B"]["distance_m"] == pytest.approx(100.0, abs=0.01)
    assert out.evidence[0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}


def test_radius_and_kinds_can_be_overridden(coverage_city: Engine) -> None:
    wider = coverage(coverage_city, service_radius_m="70.2")
    assert [f["properties"]["code"] for f in wider.evidence] == ["BLD-B"]
    with_litter_bins = coverage(coverage_city, point_kinds="collection_point,litter_bin")
    # LB-1 now covers BLD-FAR; CP-FAR (a sorting point) no longer counts.
    assert [f["properties"]["code"] for f in with_litter_bins.evidence] == ["BLD-B"]
    everything = coverage(coverage_city, service_radius_m="100.5")
    assert everything.passed is True and everything.summary["share"] == 1.0


def test_coverage_by_scope_and_by_unit(coverage_city: Engine) -> None:
    west = coverage(coverage_city, f"grid:{GRID_WEST}")
    assert (west.summary["residential_buildings"], west.passed) == (1, True)
    assert coverage(coverage_city, f"grid:{GRID_EAST}").passed is False
    rule = BinCoverage()
    params = rule.parameters(load_profile())
    with coverage_city.connect() as conn:
        units = rule.by_unit(conn, "grid", params)
        communities = rule.by_unit(conn, "community", params)
    assert units[GRID_WEST].figure == 1.0 and units[GRID_WEST].passed is True
    assert units[GRID_EAST].figure == 0.0 and units[GRID_EAST].passed is False
    assert units[GRID_B].passed is False
    assert communities[COMMUNITY].figure == 0.5 and communities[COMMUNITY].passed is False


def test_no_serving_point_anywhere(engine: Engine, tmp_path: Path) -> None:
    load(
        engine,
        tmp_path,
        {"grids": grids(), "buildings": [{"code": "BLD-1", "geometry": rect(10, 10, 30, 30)}]},
    )
    out = coverage(engine)
    assert out.passed is False
    assert out.evidence[0]["properties"]["distance_m"] is None
    assert "no collection point" in out.evidence[0]["properties"]["reason"]


def test_bad_kind_is_refused() -> None:
    from layers.checks.framework import CheckError

    with pytest.raises(CheckError, match="point_kinds"):
        BinCoverage().parameters(load_profile(), {"point_kinds": "dustbin"})


def test_the_nearest_point_is_the_geodesic_nearest_not_the_nearest_in_degrees(
    engine: Engine, tmp_path: Path
) -> None:
    # At 44.58N a degree of longitude is ~79 km: 80 m east is more degrees than 100 m north.
    east = Point(*GEOD.fwd(lon(320), lat(110), 90, 80.0)[:2])
    north = Point(*GEOD.fwd(lon(310), lat(120), 0, 100.0)[:2])
    assert abs(east.x - lon(320)) > abs(north.y - lat(120))
    load(
        engine,
        tmp_path,
        {
            "grids": grids(),
            "buildings": [{"code": "BLD-1", "geometry": rect(300, 100, 320, 120)}],
            "bins": [
                bin_("CP-EAST", "collection_point", "good", east),
                bin_("CP-NORTH", "collection_point", "good", north),
            ],
        },
    )
    p = coverage(engine).evidence[0]["properties"]
    assert p["nearest_point"] == "CP-EAST"
    assert p["distance_m"] == pytest.approx(80.0, abs=0.01)
