"""`illegal-building-deadlines`: cases and areas by status, overdue cases, the weekly report.

Semantics (DOMAIN.md §4, seed 003):
- Open cases are `reported`, `verified` and `notice_served`; `demolished`,
  `site_restored`, `legalised` and `rejected` are closed (the deadline is for
  demolition, so greening the site afterwards is not part of it).
- A case's deadline is its `deadline`; a case without one gets the profile's
  default: `demolition_days` working days after `discovered_on` (the day of
  discovery is day 0). A case with neither cannot be judged and is counted as
  `undated`.
- `as_of` (default: today in China, Asia/Shanghai) is the day of judgement and
  can be overridden per request (what-if, reports for a past day). An open
  case is overdue when its deadline is before `as_of` (the deadline day itself
  is still in time). Its working days overdue are the working days of the
  profile calendar in (deadline, as_of], so `as_of` itself counts: deadline
  Friday, as_of the next Wednesday = 3 (Mon, Tue, Wed). On the weekend right
  after a Friday deadline a case is overdue by 0 working days (1-2 calendar
  days): late, but no working day has been lost yet.
- The weekly report (每周四上报) covers the seven days ending on the last
  `weekly_report_weekday` on or before `as_of`: from the day after the
  previous report day to the report day, both included (Friday to Thursday),
  so no day is reported twice. New = discovered_on in the week, demolished =
  demolished_on in the week, restored = restored_on in the week, overdue =
  cases open at the end of the week whose deadline was before it. "Open at the
  end of the week" is rebuilt from the dates: a case demolished or restored
  after the report day was still open then; legalised and rejected cases, and
  closed cases with no date, count as closed.
Areas are the geodesic `area_m2` kept by the database. Working days come from
`Calendar.is_working_day` (weekends, holidays, 调休 make-up days): the
calendar is laid out once in Python as a numbered day table that the SQL joins,
so every case is judged in one set-based query.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from sqlalchemy import Connection

from layers.catalog import ILLEGAL_BUILDINGS
from layers.checks.framework import (
    FIRST_PAGE,
    PAGE_SQL,
    Level,
    Outcome,
    Page,
    Params,
    Rule,
    Scope,
    UnitVerdict,
    comma_list,
    features,
    grid_units,
    group_by_unit,
    rows,
    scope_sql,
    unit_sql,
)
from layers.profile import Calendar, RuleProfile

STATUSES = ILLEGAL_BUILDINGS.field("status").choice_keys()
STATUS_ZH = {c.key: c.zh for c in ILLEGAL_BUILDINGS.field("status").choices}
OPEN = ("reported", "verified", "notice_served")
CHINA = ZoneInfo("Asia/Shanghai")


class CalendarParams(Calendar):
    """The profile's calendar; a what-if override may list days as text: '2026-11-24,…'."""

    _split = field_validator("weekend", "holidays", "extra_working_days", mode="before")(comma_list)


class DeadlineParams(Params):
    """Day of judgement, default demolition deadline, report weekday and calendar."""

    as_of: date | None = None
    demolition_days: int = Field(ge=0)
    weekly_report_weekday: int = Field(ge=1, le=7)
    calendar: CalendarParams


def today() -> date:
    """Today where the campaign runs (the server may keep UTC)."""
    return datetime.now(CHINA).date()


def report_week(as_of: date, weekday: int) -> tuple[date, date]:
    """First and last day of the reporting week ending on or before `as_of`."""
    end = as_of - timedelta(days=(as_of.isoweekday() - weekday) % 7)
    return end - timedelta(days=6), end


def day_table(calendar: Calendar, first: date | None, last: date) -> dict[str, list[Any]]:
    """Days first..last with their working-day number (working days in [first, day]).

    The working days in (a, b] are then number(b) - number(a): one join per case.
    """
    days: list[date] = []
    numbers: list[int] = []
    working: list[bool] = []
    n = 0
    day = first
    while day is not None and day <= last:
        work = calendar.is_working_day(day)
        n += work
        days.append(day)
        numbers.append(n)
        working.append(work)
        day += timedelta(days=1)
    return {"cal_day": days, "cal_n": numbers, "cal_work": working}


_FIRST_DAY = """
SELECT min(coalesce(a.deadline, a.discovered_on)) AS first
FROM illegal_buildings a
WHERE coalesce(a.deadline, a.discovered_on) < :as_of AND {where}
"""

_CASES = """
WITH cal AS (
    SELECT * FROM unnest(CAST(:cal_day AS date[]), CAST(:cal_n AS int[]),
                         CAST(:cal_work AS boolean[])) AS c(day, n, working)
), dated AS (
    SELECT a.*, a.deadline IS NOT NULL AS deadline_set,
           coalesce(a.deadline, CASE WHEN :demolition_days = 0 THEN a.discovered_on
                                     ELSE w.day END) AS due
    FROM illegal_buildings a
    LEFT JOIN cal d ON a.deadline IS NULL AND d.day = a.discovered_on
    LEFT JOIN cal w ON w.working AND w.n = d.n + :demolition_days
    WHERE {where}
), cases AS (
    SELECT c.*,
           c.status = ANY(CAST(:open AS text[])) AND c.due < :as_of AS overdue,
           :as_of_n - cd.n AS working_days_overdue,
           :as_of - c.due AS calendar_days_overdue,
           c.due < :week_end AND coalesce(c.discovered_on <= :week_end, TRUE) AND NOT (
               c.status IN ('legalised', 'rejected')
               OR (c.status IN ('demolished', 'site_restored')
                   AND coalesce(coalesce(c.demolished_on, c.restored_on) <= :week_end, TRUE))
           ) AS overdue_at_week_end
    FROM dated c
    LEFT JOIN cal cd ON cd.day = c.due AND c.due < :as_of
)
"""

_FIGURES = (
    _CASES
    + """
SELECT {unit} AS unit, c.status,
       count(*) AS cases, coalesce(sum(c.area_m2), 0) AS area_m2,
       count(*) FILTER (WHERE c.overdue) AS overdue,
       coalesce(sum(c.area_m2) FILTER (WHERE c.overdue), 0) AS overdue_area_m2,
       max(c.working_days_overdue) FILTER (WHERE c.overdue) AS max_working_days_overdue,
       count(*) FILTER (WHERE c.status = ANY(CAST(:open AS text[])) AND c.deadline IS NULL
                              AND c.discovered_on IS NULL) AS undated,
       count(*) FILTER (WHERE c.discovered_on BETWEEN :week_start AND :week_end) AS new,
       coalesce(sum(c.area_m2) FILTER (WHERE c.discovered_on BETWEEN :week_start AND :week_end),
                0) AS new_area_m2,
       count(*) FILTER (WHERE c.demolished_on BETWEEN :week_start AND :week_end) AS demolished,
       coalesce(sum(c.area_m2) FILTER (WHERE c.demolished_on BETWEEN :week_start AND :week_end),
                0) AS demolished_area_m2,
       count(*) FILTER (WHERE c.restored_on BETWEEN :week_start AND :week_end) AS restored,
       coalesce(sum(c.area_m2) FILTER (WHERE c.restored_on BETWEEN :week_start AND :week_end),
                0) AS restored_area_m2,
       count(*) FILTER (WHERE c.overdue_at_week_end) AS overdue_at_week_end
FROM cases c
{join}
GROUP BY 1, 2
"""
)

_OVERDUE = (
    _CASES
    + """
SELECT ST_AsGeoJSON(c.geom, 9) AS geometry, c.code, c.status, c.address, c.owner,
       c.discovered_on::text AS discovered_on, c.due::text AS deadline,
       CASE WHEN c.deadline_set THEN 'set' ELSE 'default' END AS deadline_source,
       c.working_days_overdue, c.calendar_days_overdue,
       round(c.area_m2::numeric, 2)::float8 AS area_m2, g.code AS grid_code
FROM cases c
LEFT JOIN grids g ON g.id = c.grid_id
WHERE c.overdue
"""
    + PAGE_SQL.format(order="c.working_days_overdue DESC, c.code")
)

_SUMS = (
    "cases",
    "area_m2",
    "overdue",
    "overdue_area_m2",
    "undated",
    "new",
    "new_area_m2",
    "demolished",
    "demolished_area_m2",
    "restored",
    "restored_area_m2",
    "overdue_at_week_end",
)


class IllegalBuildingDeadlines(Rule):
    """Cases by status, overdue cases in working days, and the weekly report."""

    id = "illegal-building-deadlines"
    relative_cost = 0.1
    zh = "违法建设整改期限"
    en = "Illegal building deadlines"
    description = (
        "违建按状态统计、逾期未拆 (工作日)、每周四进展报告 / cases by status, overdue "
        "cases in working days, weekly progress report"
    )
    params_model = DeadlineParams

    def defaults(self, profile: RuleProfile) -> dict[str, Any]:
        """Deadline, report day and calendar from the profile; as_of today."""
        rules = profile.illegal_buildings
        return {
            "as_of": None,
            "demolition_days": rules.demolition_days,
            "weekly_report_weekday": rules.weekly_report_weekday,
            "calendar": profile.calendar.model_dump(),
        }

    def _bind(
        self, conn: Connection, params: DeadlineParams, where: str, bind: dict[str, Any]
    ) -> dict[str, Any]:
        as_of = params.as_of or today()
        week_start, week_end = report_week(as_of, params.weekly_report_weekday)
        first = rows(conn, _FIRST_DAY.format(where=where), {**bind, "as_of": as_of})[0]["first"]
        table = day_table(params.calendar, first, as_of)
        return {
            **bind,
            **table,
            "as_of": as_of,
            "as_of_n": table["cal_n"][-1] if table["cal_n"] else 0,
            "week_start": week_start,
            "week_end": week_end,
            "open": list(OPEN),
            "demolition_days": params.demolition_days,
        }

    @staticmethod
    def _totals(groups: list[dict[str, Any]]) -> dict[str, Any]:
        totals: dict[str, Any] = {k: sum(g[k] for g in groups) for k in _SUMS}
        for k in _SUMS:
            totals[k] = round(float(totals[k]), 2) if k.endswith("area_m2") else int(totals[k])
        worst = [g["max_working_days_overdue"] for g in groups if g["max_working_days_overdue"]]
        totals["max_working_days_overdue"] = max(worst, default=None)
        return totals

    def evaluate(
        self, conn: Connection, scope: Scope, params: DeadlineParams, page: Page = FIRST_PAGE
    ) -> Outcome:
        """Figures in scope (by the footprint's grid); overdue footprints, longest overdue first."""
        where, bind = scope_sql(scope)
        bind = self._bind(conn, params, where, bind)
        groups = rows(conn, _FIGURES.format(unit="'scope'", join="", where=where), bind)
        t = self._totals(groups)
        by_status = {s: {"cases": 0, "area_m2": 0.0} for s in STATUSES}
        for g in groups:
            by_status[g["status"]] = {
                "cases": int(g["cases"]),
                "area_m2": round(float(g["area_m2"]), 2),
            }
        summary = {
            "as_of": bind["as_of"].isoformat(),
            "cases": t["cases"],
            "area_m2": t["area_m2"],
            "by_status": by_status,
            "open": sum(by_status[s]["cases"] for s in OPEN),
            "overdue": t["overdue"],
            "overdue_area_m2": t["overdue_area_m2"],
            "max_working_days_overdue": t["max_working_days_overdue"],
            "undated": t["undated"],
            "demolition_days": params.demolition_days,
            "weekly_report": {
                "week_start": bind["week_start"].isoformat(),
                "week_end": bind["week_end"].isoformat(),
                "new": t["new"],
                "new_area_m2": t["new_area_m2"],
                "demolished": t["demolished"],
                "demolished_area_m2": t["demolished_area_m2"],
                "restored": t["restored"],
                "restored_area_m2": t["restored_area_m2"],
                "overdue": t["overdue_at_week_end"],
            },
        }
        evidence = []
        if page.limit and t["overdue"] > page.offset:
            evidence = features(conn, _OVERDUE.format(where=where), {**bind, **page.bind()})
        for f in evidence:
            p = f["properties"]
            source = "" if p["deadline_source"] == "set" else ", 按默认期限 / default deadline"
            p["reason"] = (
                f"{STATUS_ZH[p['status']]}, 逾期 {p['working_days_overdue']} 个工作日 "
                f"(期限 {p['deadline']}{source}) / {p['status']}, "
                f"{p['working_days_overdue']} working days overdue (deadline {p['deadline']})"
            )
        return Outcome(summary, t["overdue"] == 0, evidence, t["overdue"])

    def by_unit(
        self, conn: Connection, level: Level, params: DeadlineParams
    ) -> dict[str, UnitVerdict]:
        """Overdue cases per unit (a unit with no case passes)."""
        bind = self._bind(conn, params, "TRUE", {})
        groups = rows(
            conn,
            _FIGURES.format(
                unit=unit_sql(level), join="JOIN grids g ON g.id = c.grid_id", where="TRUE"
            ),
            bind,
        )
        by = group_by_unit(groups)
        units = grid_units(conn, level)
        verdicts = {}
        for unit in units:
            t = self._totals(by.get(unit, []))
            note = f"{t['overdue']} overdue of {t['cases']} cases" if t["cases"] else ""
            verdicts[unit] = UnitVerdict(float(t["overdue"]), t["overdue"] == 0, note)
        return verdicts
