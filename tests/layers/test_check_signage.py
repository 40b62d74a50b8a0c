"""`signage-quota` and `signage-entrances` on exact fixtures whose answers are known.

Places are laid out in metres east/north of 129.60E 44.58N; the distances a
verdict turns on (a board 4.9 / 5.1 m from a wall, 19 m from a gate) are built
with pyproj.Geod.fwd perpendicular to the nearest edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point, shape
from sqlalchemy import Engine, text

from layers.checks.framework import CheckError, parse_scope
from layers.checks.signage import SignageEntrances, SignageQuota
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
    offset,
    pt,
    rect,
)
from tests.tiny_city import COMMUNITY, GRID_EAST, GRID_WEST, STREET

# Every test runs on the near pairs the database keeps and again measuring them.
pytestmark = pytest.mark.usefixtures(near_path.__name__)


def board(
    code: str, geometry: Point, fixed: bool = True, condition: str = "good"
) -> dict[str, Any]:
    return {
        "code": code,
        "kind": "core_values",
        "fixed": fixed,
        "condition": condition,
        "geometry": geometry,
    }


# --- signage-quota ---------------------------------------------------------


@pytest.fixture
def quota_city(engine: Engine, tmp_path: Path) -> Engine:
    """Community A: 20 boards (XQ-9 with 9, XQ-10 with 10, 1 loose); community B: 19.

    In B, BLD-1 has 1 board 3 m from its wall (another stands 5.1 m away) and
    BLD-2 has 2 (one inside, one 4.9 m from the wall). A board that is not
    fixed and a missing board inside XQ-10 count nowhere.
    """
    compounds = [
        {"code": "XQ-9", "name": "九块小区", "geometry": rect(20, 20, 180, 180)},
        {"code": "XQ-10", "name": "十块小区", "geometry": rect(220, 20, 380, 180)},
        {"code": "XQ-OFFICE", "name": "办公园区", "residential": False,
         "geometry": rect(410, 150, 440, 190)},
    ]  # fmt: skip
    buildings = [
        {"code": "BLD-1", "name": "1号楼", "geometry": rect(450, 100, 470, 120)},
        {"code": "BLD-2", "name": "2号楼", "geometry": rect(520, 100, 540, 120)},
        {"code": "BLD-SHOP", "residential": False, "geometry": rect(560, 20, 580, 40)},
    ]
    boards = [board(f"S-9-{i}", pt(30 + 15 * i, 100)) for i in range(9)]
    boards += [board(f"S-10-{i}", pt(230 + 15 * i, 100)) for i in range(10)]
    boards += [
        board("S-LOOSE", pt(10, 190)),
        board("S-MOVABLE", pt(300, 150), fixed=False),
        board("S-GONE", pt(310, 150), condition="missing"),
        board("S-1", offset(470, 110, 90, 3.0)),  # 3 m east of BLD-1's east wall
        board("S-1-FAR", offset(450, 110, 270, 5.1)),  # 5.1 m west of its west wall
        board("S-2-IN", pt(530, 110)),  # inside BLD-2
        board("S-2-WALL", offset(530, 120, 0, 4.9)),  # 4.9 m north of its north wall
    ]
    boards += [board(f"S-B-{i}", pt(410 + 12 * i, 10)) for i in range(15)]
    load(
        engine,
        tmp_path,
        {"grids": grids(), "signage": boards, "compounds": compounds, "buildings": buildings},
    )
    return engine


def quota(engine: Engine, scope: str = "all", **overrides: str) -> Any:
    rule = SignageQuota()
    params = rule.parameters(load_profile(), overrides)
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), params)


def under(outcome: Any) -> dict[str, tuple[str, int, int]]:
    return {
        f["properties"]["code"]: (
            f["properties"]["place"],
            f["properties"]["boards"],
            f["properties"]["quota"],
        )
        for f in outcome.evidence
    }


def test_the_places_under_quota_are_found_with_their_counts(quota_city: Engine) -> None:
    out = quota(quota_city)
    assert out.passed is False
    assert under(out) == {
        COMMUNITY_B: ("community", 19, 20),
        "XQ-9": ("compound", 9, 10),
        "BLD-1": ("building", 1, 2),
    }
    assert out.summary["community"] == {"checked": 2, "under_quota": 1, "quota": 20}
    assert out.summary["compound"] == {"checked": 2, "under_quota": 1, "quota": 10}
    assert out.summary["building"] == {"checked": 2, "under_quota": 1, "quota": 2}
    assert [f["properties"]["place"] for f in out.evidence] == ["community", "compound", "building"]
    for f in out.evidence:
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    reasons = {f["properties"]["code"]: f["properties"]["reason"] for f in out.evidence}
    assert "9" in reasons["XQ-9"] and "10" in reasons["XQ-9"] and "小区" in reasons["XQ-9"]


def test_quotas_and_the_building_distance_can_be_overridden(quota_city: Engine) -> None:
    assert under(quota(quota_city, compound_quota="9")).keys() == {COMMUNITY_B, "BLD-1"}
    assert under(quota(quota_city, community_quota="19")).keys() == {"XQ-9", "BLD-1"}
    # At 5.2 m the board 5.1 m from BLD-1 is on it; at 4.8 m BLD-2 loses its wall board.
    assert "BLD-1" not in under(quota(quota_city, building_distance_m="5.2"))
    narrow = under(quota(quota_city, building_distance_m="4.8"))
    assert narrow["BLD-2"] == ("building", 1, 2)
    assert (
        quota(quota_city, community_quota="19", compound_quota="9", building_quota="1").passed
        is True
    )


def test_a_grid_scope_carries_its_whole_community(quota_city: Engine) -> None:
    east = quota(quota_city, f"grid:{GRID_EAST}")
    # Community A counted whole (20 boards, both grids): passes; XQ-10 passes.
    assert east.passed is True
    assert east.summary["community"]["checked"] == 1
    assert east.summary["compound"]["checked"] == 1
    assert east.summary["building"]["checked"] == 0
    west = quota(quota_city, f"grid:{GRID_WEST}")
    assert under(west) == {"XQ-9": ("compound", 9, 10)}
    b = quota(quota_city, f"community:{COMMUNITY_B}")
    assert under(b).keys() == {COMMUNITY_B, "BLD-1"}


def test_quota_by_unit(quota_city: Engine) -> None:
    rule = SignageQuota()
    params = rule.parameters(load_profile())
    with quota_city.connect() as conn:
        grid = rule.by_unit(conn, "grid", params)
        community = rule.by_unit(conn, "community", params)
        street = rule.by_unit(conn, "street", params)
    assert (grid[GRID_WEST].figure, grid[GRID_WEST].passed) == (1.0, False)
    assert (grid[GRID_EAST].figure, grid[GRID_EAST].passed) == (0.0, True)
    assert (grid[GRID_B].figure, grid[GRID_B].passed) == (2.0, False)  # community + BLD-1
    assert (community[COMMUNITY].figure, community[COMMUNITY_B].figure) == (1.0, 2.0)
    assert street[STREET].figure == 3.0 and street[STREET].passed is False
    assert "1 communities" in grid[GRID_B].note


def test_twenty_boards_pass_the_community_quota(engine: Engine, tmp_path: Path) -> None:
    boards = [board(f"S-{i}", pt(10 + 9 * i, 50)) for i in range(20)]
    load(engine, tmp_path, {"grids": grids(), "signage": boards})
    out = quota(engine, f"community:{COMMUNITY}")
    assert out.passed is True and out.summary["community"]["under_quota"] == 0
    # Community B has none: it fails with 0 boards, drawn as its polygon.
    everything = quota(engine)
    assert under(everything) == {COMMUNITY_B: ("community", 0, 20)}
    # Without its own row in grids, a community is drawn as the union of its cells.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM grids WHERE code = :c"), {"c": COMMUNITY_B})
    drawn = quota(engine).evidence
    assert [f["properties"]["code"] for f in drawn] == [COMMUNITY_B]
    assert drawn[0]["properties"]["name"] is None
    assert shape(drawn[0]["geometry"]).area == pytest.approx(rect(400, 0, 600, 200).area)


# --- signage-entrances -----------------------------------------------------


@pytest.fixture
def entrance_city(engine: Engine, tmp_path: Path) -> Engine:
    """A compound gate with a board 19 m away; a building door and a shop without boards."""
    compounds = [{"code": "XQ-1", "name": "立新小区", "geometry": rect(20, 20, 180, 180)}]
    buildings = [{"code": "BLD-1", "geometry": rect(250, 100, 270, 120)}]
    entrances = [
        {"code": "E-XQ", "owner_layer": "compounds", "owner_code": "XQ-1", "geometry": pt(100, 20)},
        {"code": "E-BLD", "owner_layer": "buildings", "owner_code": "BLD-1",
         "geometry": pt(260, 100)},
    ]  # fmt: skip
    boards = [
        board("S-GATE", offset(100, 20, 180, 19.0)),  # 19 m south of the gate
        board("S-MOVABLE", offset(100, 20, 90, 2.0), fixed=False),
        board("S-FAR", pt(500, 100)),
    ]
    assert GEOD.inv(lon(100), lat(20), boards[0]["geometry"].x, boards[0]["geometry"].y)[
        2
    ] == pytest.approx(19.0, abs=1e-6)
    load(
        engine,
        tmp_path,
        {
            "grids": grids(),
            "compounds": compounds,
            "buildings": buildings,
            "entrances": entrances,
            "signage": boards,
        },
    )
    return engine


def entrances_check(engine: Engine, scope: str = "all", **overrides: str) -> Any:
    rule = SignageEntrances()
    params = rule.parameters(load_profile(), overrides)
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), params)


def test_a_board_19_m_from_a_gate_passes_at_20_m_and_fails_at_15_m(
    entrance_city: Engine,
) -> None:
    out = entrances_check(entrance_city)
    assert out.summary["entrance_distance_m"] == 20.0
    assert out.passed is True
    assert out.evidence == []
    s = out.summary
    assert (s["boards"], s["boards_at_entrances"], s["boards_elsewhere"]) == (2, 1, 1)
    assert s["share_at_entrances"] == 0.5
    assert (s["entrances"], s["entrances_with_board"], s["required_entrances"]) == (2, 1, 1)
    assert s["by_owner"]["buildings"] == {"entrances": 1, "with_board": 0, "required": False}

    rule = SignageEntrances()
    params = rule.parameters(load_profile(), {"entrance_distance_m": "15"})
    with entrance_city.connect() as conn:
        strict = rule.evaluate(conn, parse_scope("all"), params)
    assert strict.passed is False
    assert [f["properties"]["code"] for f in strict.evidence] == ["E-XQ"]
    p = strict.evidence[0]["properties"]
    assert p["owner_name"] == "立新小区"
    assert p["nearest_board"] == "S-GATE"
    assert p["distance_m"] == pytest.approx(19.0, abs=0.01)
    assert "19.00" in p["reason"] and "15" in p["reason"]
    assert strict.evidence[0]["geometry"]["type"] == "Point"
    assert strict.summary["boards_at_entrances"] == 0


def test_entrances_needing_boards_and_units(entrance_city: Engine) -> None:
    # Building doors become required: E-BLD has no board within 100 m (5 x 20 m).
    out = entrances_check(entrance_city, entrance_owners="compounds,buildings")
    assert [f["properties"]["code"] for f in out.evidence] == ["E-BLD"]
    assert out.passed is False
    assert out.evidence[0]["properties"]["nearest_board"] is None
    assert "none within 100 m" in out.evidence[0]["properties"]["reason"]
    # Scoped counts take the boards and entrances of the scope, near anything.
    west = entrances_check(entrance_city, f"grid:{GRID_WEST}")
    s = west.summary
    assert (s["boards"], s["boards_at_entrances"], s["entrances"], s["entrances_with_board"]) == (
        1,
        1,
        1,
        1,
    )
    assert west.passed is True
    east = entrances_check(entrance_city, f"grid:{GRID_EAST}")
    assert (east.summary["boards"], east.summary["entrances"]) == (0, 1)
    assert east.passed is None  # a building door only: nothing required
    b = entrances_check(entrance_city, f"community:{COMMUNITY_B}")
    assert (b.summary["boards"], b.summary["boards_elsewhere"]) == (1, 1)
    # Only building doors required, in the west grid there are none: no verdict.
    west = entrances_check(entrance_city, f"grid:{GRID_WEST}", entrance_owners="buildings")
    assert west.passed is None
    rule = SignageEntrances()
    with entrance_city.connect() as conn:
        units = rule.by_unit(conn, "grid", rule.parameters(load_profile(), {}))
        strict = rule.by_unit(
            conn, "grid", rule.parameters(load_profile(), {"entrance_distance_m": "15"})
        )
    assert units == {GRID_WEST: units[GRID_WEST]}  # the only grid with a compound gate
    assert (units[GRID_WEST].figure, units[GRID_WEST].passed) == (1.0, True)
    assert (strict[GRID_WEST].figure, strict[GRID_WEST].passed) == (0.0, False)


def test_unknown_entrance_owner_is_refused() -> None:
    with pytest.raises(CheckError, match="entrance_owners"):
        SignageEntrances().parameters(load_profile(), {"entrance_owners": "gates"})


def test_a_board_across_a_grid_line_serves_the_gate_in_the_other_grid(
    engine: Engine, tmp_path: Path
) -> None:
    load(
        engine,
        tmp_path,
        {
            "grids": grids(),
            "compounds": [
                {"code": "XQ-1", "name": "边界小区", "geometry": rect(150, 50, 199, 150)}
            ],
            "entrances": [
                {
                    "code": "E-1",
                    "owner_layer": "compounds",
                    "owner_code": "XQ-1",
                    "geometry": pt(199, 100),
                }
            ],
            "signage": [board("S-1", pt(205, 100))],  # 6 m east, in the east grid
        },
    )
    west = entrances_check(engine, f"grid:{GRID_WEST}")
    assert west.passed is True
    assert (west.summary["entrances_with_board"], west.summary["boards"]) == (1, 0)
    east = entrances_check(engine, f"grid:{GRID_EAST}")
    assert (east.summary["boards"], east.summary["boards_at_entrances"]) == (1, 1)
    assert east.summary["entrances"] == 0 and east.passed is None
    whole = entrances_check(engine)
    assert (whole.summary["boards_at_entrances"], whole.summary["entrances_with_board"]) == (1, 1)
