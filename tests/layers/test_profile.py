"""Rule profiles: DOMAIN.md defaults, a city's overrides, refused mistakes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from layers.profile import InvalidProfile, load_profile


def test_the_default_profile_carries_the_domain_numbers() -> None:
    profile = load_profile()
    assert profile.lamps.lighting_rate["main"] == 0.96
    assert profile.lamps.lighting_rate_by_placement["stairwell"] == 1.0
    assert profile.bins.condition_rate == 0.95
    assert profile.signage.community_quota == 20
    assert profile.signage.compound_quota == 10
    assert profile.signage.building_quota == 2
    assert profile.signage.building_distance_m == 5.0
    cafe = [r for r in profile.school_zones.restrictions if "internet_cafe" in r.venue_types]
    assert {r.distance_m for r in cafe if "primary" in r.school_types} == {200.0}


def test_a_city_changes_one_number_and_keeps_every_other_default(tmp_path: Path) -> None:
    city = tmp_path / "city.toml"
    city.write_text('name = "牡丹江"\n[lamps.lighting_rate]\nmain = 0.98\n', encoding="utf-8")
    profile = load_profile(city)
    assert profile.name == "牡丹江"
    assert profile.lamps.lighting_rate["main"] == 0.98
    assert profile.lamps.lighting_rate["back_street"] == 0.96
    assert profile.bins.service_radius_m == 70.0


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("[lamps]\nlighting_rat = 0.9\n", "lighting_rat"),
        ("[bins]\ncondition_rate = 1.5\n", "condition_rate"),
        ("[signage]\ncompound_quota = -1\n", "compound_quota"),
        (
            '[[school_zones.restrictions]]\nvenue_types = ["netbar"]\n'
            'school_types = ["primary"]\ndistance_m = 200\n',
            "netbar",
        ),
        ("[lamps\n", "not valid TOML"),
    ],
)
def test_a_mistyped_profile_is_refused_naming_the_mistake(
    tmp_path: Path, content: str, named: str
) -> None:
    city = tmp_path / "city.toml"
    city.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidProfile, match=named):
        load_profile(city)


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidProfile, match="cannot read"):
        load_profile(tmp_path / "nowhere.toml")


def test_the_calendar_counts_weekends_holidays_and_make_up_days(tmp_path: Path) -> None:
    city = tmp_path / "city.toml"
    city.write_text(
        "[calendar]\nholidays = [2026-10-01, 2026-10-02]\nextra_working_days = [2026-10-10]\n",
        encoding="utf-8",
    )
    calendar = load_profile(city).calendar
    assert not calendar.is_working_day(date(2026, 10, 1))  # National Day, a Thursday
    assert calendar.is_working_day(date(2026, 9, 30))
    assert not calendar.is_working_day(date(2026, 10, 4))  # Sunday
    assert calendar.is_working_day(date(2026, 10, 10))  # Saturday make-up day (调休)
