"""Evidence paging: a run draws one page of the failing items, counts them all, and the
verdict and figures are the same whatever the page (issue 4: a whole city fails in
200,000 places)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from layers.checks import RULES
from layers.checks.framework import CheckError, Outcome, Page, parse_scope
from layers.checks.reports import run_check
from layers.profile import load_profile
from tests.geodesic_city import grids, load, pt, rect

PROFILE = load_profile()


def run(engine: Engine, rule_id: str, page: Page, scope: str = "all") -> Outcome:
    rule = RULES[rule_id]
    with engine.connect() as conn:
        return rule.evaluate(conn, parse_scope(scope), rule.parameters(PROFILE), page)


def codes(outcome: Outcome) -> list[str]:
    return [f["properties"]["code"] for f in outcome.evidence]


def test_a_page_is_a_slice_and_the_rest_of_a_page_follows_a_shorter_list() -> None:
    items = list(range(10))
    assert Page(3, 2).of(items) == [2, 3, 4]
    assert Page(3, 9).of(items) == [9]
    assert Page(0, 0).of(items) == []
    # A page of 3 from offset 2 over two lists of 4 and 10: 2 from the first, 1 from the next.
    assert Page(3, 2).after(4) == Page(1, 0)
    assert Page(3, 5).after(4) == Page(3, 1)
    assert Page(3, 0).after(4) == Page(0, 0)
    with pytest.raises(CheckError, match="evidence_limit"):
        Page(-1, 0)
    with pytest.raises(CheckError, match="evidence_offset"):
        Page(1, -1)


@pytest.fixture
def dark_city(engine: Engine, tmp_path: Path) -> Engine:
    """Seven unlit lamps (L-1 to L-7) among ten lit ones, and nothing else failing."""
    lamps: list[dict[str, Any]] = [
        {"code": f"L-{i}", "status": "unlit", "geometry": pt(20 * i, 50)} for i in range(1, 8)
    ]
    lamps += [{"code": f"M-{i}", "status": "lit", "geometry": pt(20 * i, 150)} for i in range(10)]
    load(engine, tmp_path, {"grids": grids(), "street_lamps": lamps})
    return engine


def test_pages_of_dark_lamps_in_code_order_with_the_total_and_the_same_verdict(
    dark_city: Engine,
) -> None:
    whole = run(dark_city, "lamp-lighting-rate", Page(100, 0))
    first = run(dark_city, "lamp-lighting-rate", Page(3, 0))
    last = run(dark_city, "lamp-lighting-rate", Page(3, 6))
    none = run(dark_city, "lamp-lighting-rate", Page(0, 0))
    beyond = run(dark_city, "lamp-lighting-rate", Page(3, 50))
    assert codes(whole) == [f"L-{i}" for i in range(1, 8)]
    assert codes(first) == ["L-1", "L-2", "L-3"] and codes(last) == ["L-7"]
    assert none.evidence == [] and beyond.evidence == []
    for outcome in (whole, first, last, none, beyond):
        assert outcome.evidence_total == 7
        assert outcome.passed is False and outcome.summary == whole.summary


@pytest.fixture
def bare_city(engine: Engine, tmp_path: Path) -> Engine:
    """No boards at all: community A, its compounds XQ-1 and XQ-2 and buildings B-1 to
    B-3 are all under quota (community B has no grid cell of its own here)."""
    compounds = [
        {
            "code": f"XQ-{i}",
            "name": f"{i}号小区",
            "geometry": rect(100 * i - 80, 20, 100 * i - 20, 80),
        }
        for i in (1, 2)
    ]
    buildings = [
        {"code": f"B-{i}", "geometry": rect(100 * i - 70, 120, 100 * i - 50, 140)}
        for i in (1, 2, 3)
    ]
    load(
        engine,
        tmp_path,
        {"grids": grids(community_b=False), "compounds": compounds, "buildings": buildings},
    )
    return engine


def test_a_page_of_places_under_quota_runs_on_from_compounds_into_buildings(
    bare_city: Engine,
) -> None:
    whole = run(bare_city, "signage-quota", Page(100, 0))
    assert codes(whole) == ["231005001001000", "XQ-1", "XQ-2", "B-1", "B-2", "B-3"]
    page = run(bare_city, "signage-quota", Page(3, 2))
    assert codes(page) == ["XQ-2", "B-1", "B-2"]
    assert [f["properties"]["place"] for f in page.evidence] == ["compound", "building", "building"]
    assert page.evidence_total == whole.evidence_total == 6
    assert page.summary == whole.summary and page.passed is whole.passed is False


def test_the_report_says_how_many_fail_and_where_the_page_starts(dark_city: Engine) -> None:
    with dark_city.connect() as conn:
        report = run_check(conn, PROFILE, "lamp-lighting-rate", "all", None, Page(2, 4))
    evidence = report["evidence"]
    assert evidence["numberMatched"] == 7 and evidence["numberReturned"] == 2
    assert (evidence["offset"], evidence["limit"]) == (4, 2)
    assert [f["properties"]["code"] for f in evidence["features"]] == ["L-5", "L-6"]


@pytest.mark.parametrize("rule_id", list(RULES))
def test_every_rule_counts_its_failing_items_whatever_the_page(
    dark_city: Engine, rule_id: str
) -> None:
    whole = run(dark_city, rule_id, Page(100, 0))
    empty = run(dark_city, rule_id, Page(0, 0))
    assert whole.evidence_total == len(whole.evidence)
    assert empty.evidence == [] and empty.evidence_total == whole.evidence_total
    assert empty.passed == whole.passed
