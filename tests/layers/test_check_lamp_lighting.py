"""亮灯率: a grid's lighting rate against the profile, with the dark lamps as evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import Point
from sqlalchemy import Engine

from data.importer import import_file
from layers.catalog import CATALOG, STREET_LAMPS
from layers.checks.framework import parse_scope
from layers.checks.lamp_lighting import LampLightingRate
from layers.profile import load_profile
from tests.tiny_city import GRID_EAST, GRID_WEST, frame, tiny_city, write_geojson

RULE = LampLightingRate()


@pytest.fixture
def city(engine: Engine, tmp_path: Path) -> Engine:
    data = tiny_city()
    for spec in CATALOG:
        import_file(engine, write_geojson(data[spec.id], tmp_path / f"{spec.id}.geojson"), spec)
    return engine


def run(engine: Engine, scope: str = "all", **overrides: str):  # type: ignore[no-untyped-def]
    params = RULE.parameters(load_profile(), overrides)
    with engine.connect() as conn:
        return RULE.evaluate(conn, parse_scope(scope), params)


def test_one_unlit_lamp_of_twelve_fails_the_96_percent_main_road_target(city: Engine) -> None:
    outcome = run(city)
    assert outcome.summary["installed"] == 12 and outcome.summary["lit"] == 11
    assert outcome.summary["groups"]["main"]["rate"] == pytest.approx(11 / 12, abs=1e-6)
    assert outcome.passed is False
    assert [f["properties"]["code"] for f in outcome.evidence] == ["L-0003"]
    assert "不亮" in outcome.evidence[0]["properties"]["reason"]


def test_the_west_grid_fails_and_the_east_grid_passes(city: Engine) -> None:
    west = run(city, f"grid:{GRID_WEST}")
    east = run(city, f"grid:{GRID_EAST}")
    assert (west.summary["installed"], west.summary["lit"], west.passed) == (7, 6, False)
    assert (east.summary["installed"], east.summary["lit"], east.passed) == (5, 5, True)
    assert east.evidence == []


def test_a_what_if_threshold_of_90_percent_passes_the_district(city: Engine) -> None:
    assert run(city, **{"lighting_rate.main": "0.9"}).passed is True


def test_an_unlit_stairwell_lamp_fails_the_100_percent_stairwell_rule(
    city: Engine, tmp_path: Path
) -> None:
    stairwell = frame(
        [
            {
                "code": "L-S1",
                "placement": "stairwell",
                "status": "lit",
                "geometry": Point(250, 160),
            },
            {
                "code": "L-S2",
                "placement": "stairwell",
                "status": "unlit",
                "geometry": Point(251, 160),
            },
        ]
    )
    import_file(city, write_geojson(stairwell, tmp_path / "stair.geojson"), STREET_LAMPS)
    outcome = run(city, f"grid:{GRID_EAST}")
    assert outcome.summary["groups"]["stairwell"]["rate"] == 0.5
    assert outcome.summary["groups"]["stairwell"]["threshold"] == 1.0
    assert outcome.summary["groups"]["main"]["passed"] is True
    assert outcome.passed is False


def test_every_grid_gets_its_rate_for_the_scorecard(city: Engine) -> None:
    with city.connect() as conn:
        units = RULE.by_unit(conn, "grid", RULE.parameters(load_profile()))
    assert units[GRID_WEST].figure == pytest.approx(6 / 7, abs=1e-6)
    assert units[GRID_WEST].passed is False and units[GRID_EAST].passed is True
    with city.connect() as conn:
        community = RULE.by_unit(conn, "community", RULE.parameters(load_profile()))
    assert list(community) == ["231005001001000"]


def test_a_misspelt_parameter_is_refused_naming_it() -> None:
    from layers.checks.framework import CheckError

    with pytest.raises(CheckError, match="lighting_rat"):
        RULE.parameters(load_profile(), {"lighting_rat.main": "0.9"})
    with pytest.raises(CheckError, match=r"lighting_rate\.main"):
        RULE.parameters(load_profile(), {"lighting_rate.main": "lots"})
