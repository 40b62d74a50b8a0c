"""Check reports and scorecards as JSON-ready documents, shared by the API and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, text

from layers.checks import RULES, get_rule
from layers.checks.framework import (
    FIRST_PAGE,
    LEVELS,
    CheckError,
    Level,
    Outcome,
    Page,
    Rule,
    Scope,
    parse_scope,
)
from layers.checks.runner import run_rules
from layers.profile import RuleProfile


def describe(rule: Rule, profile: RuleProfile) -> dict[str, Any]:
    """A rule's names, description and current profile values."""
    return {
        "id": rule.id,
        "name": {"zh": rule.zh, "en": rule.en},
        "description": rule.description,
        "parameters": rule.parameters(profile).model_dump(mode="json"),
    }


def run_check(
    conn: Connection,
    profile: RuleProfile,
    rule_id: str,
    scope: str | None = None,
    overrides: Mapping[str, str] | None = None,
    page: Page = FIRST_PAGE,
) -> dict[str, Any]:
    """One rule over one scope: parameters used, summary, verdict and one page of evidence.

    The evidence says how many failing items there are (`numberMatched`), how many it
    holds (`numberReturned`) and where the page starts (`offset`, `limit`).
    """
    rule = get_rule(rule_id)
    where = parse_scope(scope)
    params = rule.parameters(profile, overrides)
    return _report(rule, where, params, rule.evaluate(conn, where, params, page), page)


def run_checks(
    engine: Engine,
    profile: RuleProfile,
    rule_ids: list[str],
    scope: str | None = None,
    page: Page = FIRST_PAGE,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Several rules over one scope, side by side on one snapshot (`layers.checks.runner`).

    The reports are those `run_check` gives, in the order of `rule_ids`; bad scopes and
    unknown rules are refused before any rule runs. `workers`: connections at most (the
    service passes its `check_workers` setting).
    """
    rules = [get_rule(r) for r in rule_ids]
    where = parse_scope(scope)
    params = {rule.id: rule.parameters(profile) for rule in rules}
    outcomes = run_rules(
        engine, rules, lambda rule, conn: rule.evaluate(conn, where, params[rule.id], page), workers
    )
    return [_report(r, where, params[r.id], outcomes[r.id], page) for r in rules]


def _report(rule: Rule, where: Scope, params: Any, outcome: Outcome, page: Page) -> dict[str, Any]:
    """A rule's outcome as the JSON document of `/checks/{rule}`."""
    return {
        "rule": rule.id,
        "name": {"zh": rule.zh, "en": rule.en},
        "parameters": params.model_dump(mode="json"),
        "scope": where.label,
        "passed": outcome.passed,
        "summary": outcome.summary,
        "evidence": {
            "type": "FeatureCollection",
            "numberMatched": outcome.evidence_total,
            "numberReturned": len(outcome.evidence),
            "offset": page.offset,
            "limit": page.limit,
            "features": outcome.evidence,
        },
    }


def scorecard(engine: Engine, profile: RuleProfile, level: str, workers: int = 1) -> dict[str, Any]:
    """Every rule per unit of `level`, ranked: most rules passed first, the last named.

    The rules run side by side on one snapshot (`layers.checks.runner`).
    """
    if level not in LEVELS:
        raise CheckError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    unit_level: Level = level
    rules = list(RULES.values())
    params = {rule.id: rule.parameters(profile) for rule in rules}
    with engine.connect() as conn:
        names = {
            r.code: r.name
            for r in conn.execute(
                text("SELECT code, name FROM grids WHERE level = :l"), {"l": level}
            )
        }
    results = run_rules(
        engine, rules, lambda rule, conn: rule.by_unit(conn, unit_level, params[rule.id]), workers
    )
    units = sorted(set(names) | {u for verdicts in results.values() for u in verdicts})
    rows: list[dict[str, Any]] = []
    for unit in units:
        cells = {}
        for rule_id, verdicts in results.items():
            verdict = verdicts.get(unit)
            cells[rule_id] = (
                {"passed": None, "figure": None}
                if verdict is None
                else {"passed": verdict.passed, "figure": verdict.figure}
            )
        judged = [c["passed"] for c in cells.values() if c["passed"] is not None]
        rows.append(
            {
                "code": unit,
                "name": names.get(unit),
                "passed": sum(1 for p in judged if p),
                "failed": sum(1 for p in judged if not p),
                "rules": cells,
            }
        )
    rows.sort(key=lambda r: (-int(r["passed"]), int(r["failed"]), str(r["code"])))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {
        "level": level,
        "rules": list(RULES),
        "units": rows,
        "last": rows[-1]["code"] if rows else None,
    }
