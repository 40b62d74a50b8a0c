"""`illegal-building-deadlines`: working days overdue, closed statuses, the weekly report.

The calendar of November 2026 (ISO weekdays): Fri 13, Mon 16, Thu 19, Fri 20,
Sat 21, Sun 22, Mon 23, Tue 24, Wed 25, Thu 26. With as_of Wednesday 25 the
report week is Fri 13 .. Thu 19. Expected working days are counted here by
hand (or by a plain weekday loop), not with the profile's Calendar.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from layers.checks.framework import parse_scope
from layers.checks.illegal_buildings import IllegalBuildingDeadlines, day_table, report_week
from layers.profile import RuleProfile, load_profile
from tests.geodesic_city import GEOD, grids, load, rect
from tests.tiny_city import COMMUNITY, GRID_EAST, GRID_WEST

AS_OF = "2026-11-25"  # a Wednesday


def case(code: str, status: str, x: float, size: float = 10, **dates: str) -> dict[str, Any]:
    """A square footprint `size` metres wide at x metres east, 50 m north."""
    return {"code": code, "status": status, "geometry": rect(x, 50, x + size, 50 + size), **dates}


CASES = [
    # Grid west (x < 200).
    case("WJ-1", "verified", 10, discovered_on="2026-10-30", deadline="2026-11-20"),
    case("WJ-2", "notice_served", 30, discovered_on="2026-10-30", deadline=AS_OF),
    case("WJ-3", "demolished", 50, discovered_on="2026-10-01", deadline="2026-11-01",
         demolished_on="2026-11-18"),
    case("WJ-4", "legalised", 70, discovered_on="2026-09-01", deadline="2026-10-01"),
    case("WJ-5", "rejected", 90, discovered_on="2026-09-01", deadline="2026-10-01"),
    case("WJ-6", "site_restored", 110, discovered_on="2026-10-01", deadline="2026-11-12",
         demolished_on="2026-11-10", restored_on="2026-11-19"),
    # No deadline: 20 working days after Tue 20 Oct is Tue 17 Nov.
    case("WJ-7", "reported", 130, size=20, discovered_on="2026-10-20"),
    # Grid east.
    case("WJ-8", "verified", 210, discovered_on="2026-11-16", deadline="2026-12-31"),
    case("WJ-9", "notice_served", 230, size=15, discovered_on="2026-10-01",
         deadline="2026-11-13"),
    # Demolished after the report day: open (and overdue) at the end of the week.
    case("WJ-10", "demolished", 250, discovered_on="2026-10-01", deadline="2026-11-16",
         demolished_on="2026-11-23"),
    case("WJ-11", "reported", 270),  # no date at all: cannot be judged
]  # fmt: skip


@pytest.fixture
def cases(engine: Engine, tmp_path: Path) -> Engine:
    load(engine, tmp_path, {"grids": grids(community_b=False), "illegal_buildings": CASES})
    return engine


def profile_with(tmp_path: Path, calendar: str) -> RuleProfile:
    city = tmp_path / "city.toml"
    city.write_text(f"[calendar]\n{calendar}\n", encoding="utf-8")
    return load_profile(city)


def run(
    engine: Engine,
    profile: RuleProfile | None = None,
    scope: str = "all",
    **overrides: str,
) -> Any:
    rule = IllegalBuildingDeadlines()
    params = rule.parameters(profile or load_profile(), {"as_of": AS_OF, **overrides})
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), params)


def overdue(outcome: Any) -> dict[str, int]:
    return {
        f["properties"]["code"]: f["properties"]["working_days_overdue"] for f in outcome.evidence
    }


def plain_working_days(after: date, until: date) -> int:
    """Mon-Fri days in (after, until], counted independently of the profile's Calendar."""
    n, day = 0, after + timedelta(days=1)
    while day <= until:
        n += day.isoweekday() <= 5
        day += timedelta(days=1)
    return n


def test_working_days_overdue_count_the_as_of_day_and_skip_the_weekend(cases: Engine) -> None:
    out = run(cases)
    # WJ-1: deadline Fri 20, as_of Wed 25 -> Mon 23, Tue 24, Wed 25.
    assert plain_working_days(date(2026, 11, 20), date(2026, 11, 25)) == 3
    assert overdue(out) == {"WJ-9": 8, "WJ-7": 6, "WJ-1": 3}  # most overdue first
    assert list(overdue(out)) == ["WJ-9", "WJ-7", "WJ-1"]
    assert overdue(out)["WJ-9"] == plain_working_days(date(2026, 11, 13), date(2026, 11, 25))
    assert overdue(out)["WJ-7"] == plain_working_days(date(2026, 11, 17), date(2026, 11, 25))
    props = {f["properties"]["code"]: f["properties"] for f in out.evidence}
    assert props["WJ-1"]["calendar_days_overdue"] == 5
    assert props["WJ-1"]["deadline"] == "2026-11-20"
    assert props["WJ-1"]["deadline_source"] == "set"
    assert "3 working days overdue" in props["WJ-1"]["reason"]
    assert "逾期 3 个工作日" in props["WJ-1"]["reason"]
    assert out.evidence[0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert out.passed is False
    assert out.summary["overdue"] == 3
    assert out.summary["max_working_days_overdue"] == 8
    assert out.summary["as_of"] == AS_OF


def test_a_missing_deadline_defaults_to_the_profiles_demolition_days(cases: Engine) -> None:
    # Tue 20 Oct + 20 working days (Mon-Fri, no holidays) = Tue 17 Nov.
    day, n = date(2026, 10, 20), 0
    while n < 20:
        day += timedelta(days=1)
        n += day.isoweekday() <= 5
    assert day == date(2026, 11, 17)
    props = {f["properties"]["code"]: f["properties"] for f in run(cases).evidence}
    assert props["WJ-7"]["deadline"] == "2026-11-17"
    assert props["WJ-7"]["deadline_source"] == "default"
    # 30 working days: due Tue 1 Dec, not overdue.
    assert "WJ-7" not in overdue(run(cases, demolition_days="30"))
    # 0: due the day of discovery.
    assert run(cases, demolition_days="0").evidence[0]["properties"]["deadline"] == "2026-10-20"


def test_the_deadline_day_itself_is_in_time(cases: Engine) -> None:
    assert "WJ-2" not in overdue(run(cases))  # deadline == as_of
    assert overdue(run(cases, as_of="2026-11-26"))["WJ-2"] == 1


def test_closed_statuses_are_never_overdue(cases: Engine) -> None:
    out = run(cases, as_of="2027-06-01")
    assert set(overdue(out)) == {"WJ-1", "WJ-2", "WJ-7", "WJ-8", "WJ-9"}


def test_a_weekend_after_the_deadline_is_late_by_zero_working_days(cases: Engine) -> None:
    out = run(cases, as_of="2026-11-21")  # Saturday after WJ-1's Friday deadline
    props = {f["properties"]["code"]: f["properties"] for f in out.evidence}
    assert props["WJ-1"]["working_days_overdue"] == 0
    assert props["WJ-1"]["calendar_days_overdue"] == 1
    assert overdue(run(cases, as_of="2026-11-23"))["WJ-1"] == 1  # Monday


def test_holidays_and_make_up_working_days_come_from_the_profile_calendar(
    cases: Engine, tmp_path: Path
) -> None:
    holiday = profile_with(tmp_path, "holidays = [2026-11-24]")
    assert overdue(run(cases, holiday))["WJ-1"] == 2  # Mon 23, Wed 25
    assert overdue(run(cases, holiday))["WJ-9"] == 7
    make_up = profile_with(tmp_path, "extra_working_days = [2026-11-21]")
    assert overdue(run(cases, make_up))["WJ-1"] == 4  # Sat 21 (调休), Mon, Tue, Wed
    six_day_week = profile_with(tmp_path, "weekend = [7]")
    assert overdue(run(cases, six_day_week))["WJ-1"] == 4
    # The same as a what-if override of the default profile.
    assert (
        overdue(run(cases, None, "all", **{"calendar.holidays": "2026-11-23,2026-11-24"}))["WJ-1"]
        == 1
    )
    assert overdue(run(cases, None, "all", **{"calendar.weekend": "7"}))["WJ-1"] == 4


def test_counts_and_geodesic_areas_by_status(cases: Engine) -> None:
    out = run(cases)
    s = out.summary
    assert s["cases"] == 11
    assert {k: v["cases"] for k, v in s["by_status"].items()} == {
        "reported": 2,
        "verified": 2,
        "notice_served": 2,
        "demolished": 2,
        "site_restored": 1,
        "legalised": 1,
        "rejected": 1,
    }
    assert s["open"] == 6
    assert s["undated"] == 1

    def area(code: str) -> float:
        geom = next(c["geometry"] for c in CASES if c["code"] == code)
        return abs(GEOD.geometry_area_perimeter(geom)[0])

    assert s["by_status"]["verified"]["area_m2"] == pytest.approx(
        area("WJ-1") + area("WJ-8"), abs=0.02
    )
    assert area("WJ-7") == pytest.approx(400, rel=1e-3)
    assert s["overdue_area_m2"] == pytest.approx(
        area("WJ-1") + area("WJ-7") + area("WJ-9"), abs=0.02
    )
    assert s["area_m2"] == pytest.approx(sum(area(c["code"]) for c in CASES), abs=0.05)


def test_weekly_report_thursday_to_thursday(cases: Engine) -> None:
    report = run(cases).summary["weekly_report"]
    assert (report["week_start"], report["week_end"]) == ("2026-11-13", "2026-11-19")
    assert report["new"] == 1  # WJ-8, discovered Mon 16
    assert report["demolished"] == 1  # WJ-3, Wed 18
    assert report["restored"] == 1  # WJ-6, Thu 19
    # Open at Thu 19 with a deadline before it: WJ-9 (13), WJ-10 (16, demolished 23), WJ-7 (17).
    assert report["overdue"] == 3
    assert report["new_area_m2"] > 0
    # On the Thursday itself the week ends that day.
    thursday = run(cases, as_of="2026-11-26").summary["weekly_report"]
    assert (thursday["week_start"], thursday["week_end"]) == ("2026-11-20", "2026-11-26")
    assert (thursday["new"], thursday["demolished"], thursday["restored"]) == (0, 1, 0)
    # WJ-1 (20), WJ-2 (25), WJ-7, WJ-9; WJ-10 was demolished on the 23rd.
    assert thursday["overdue"] == 4


def test_report_week_and_day_table() -> None:
    assert report_week(date(2026, 11, 25), 4) == (date(2026, 11, 13), date(2026, 11, 19))
    assert report_week(date(2026, 11, 19), 4) == (date(2026, 11, 13), date(2026, 11, 19))
    assert report_week(date(2026, 11, 25), 1) == (date(2026, 11, 17), date(2026, 11, 23))
    table = day_table(load_profile().calendar, date(2026, 11, 20), date(2026, 11, 25))
    assert table["cal_n"] == [1, 1, 1, 2, 3, 4]
    assert day_table(load_profile().calendar, None, date(2026, 11, 25))["cal_day"] == []


def test_scope_and_by_unit(cases: Engine) -> None:
    west = run(cases, scope=f"grid:{GRID_WEST}")
    assert set(overdue(west)) == {"WJ-1", "WJ-7"}
    assert west.summary["cases"] == 7
    assert west.summary["weekly_report"]["overdue"] == 1  # WJ-7
    east = run(cases, scope=f"grid:{GRID_EAST}")
    assert overdue(east) == {"WJ-9": 8}
    assert east.summary["weekly_report"]["new"] == 1
    rule = IllegalBuildingDeadlines()
    params = rule.parameters(load_profile(), {"as_of": AS_OF})
    with cases.connect() as conn:
        grid = rule.by_unit(conn, "grid", params)
        community = rule.by_unit(conn, "community", params)
    assert (grid[GRID_WEST].figure, grid[GRID_WEST].passed) == (2.0, False)
    assert (grid[GRID_EAST].figure, grid[GRID_EAST].passed) == (1.0, False)
    assert community[COMMUNITY].figure == 3.0
    with cases.connect() as conn:
        early = rule.by_unit(conn, "grid", rule.parameters(load_profile(), {"as_of": "2026-11-01"}))
    assert early[GRID_EAST].passed is True and early[GRID_WEST].passed is True


def test_no_cases_pass_and_as_of_defaults_to_today_in_china(engine: Engine) -> None:
    rule = IllegalBuildingDeadlines()
    params = rule.parameters(load_profile())
    assert params.as_of is None
    with engine.connect() as conn:
        out = rule.evaluate(conn, parse_scope("all"), params)
    assert out.passed is True and out.evidence == []
    assert out.summary["as_of"] == datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert out.summary["weekly_report"]["new"] == 0
