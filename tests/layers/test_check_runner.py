"""A planner asks for every rule at once: the rules run side by side on one snapshot.

`layers.checks.runner` gives each worker its own connection, all reading the snapshot
the first exported, so a whole-city report is as consistent as one transaction while
inspectors keep uploading, and a rule's error stops the run with that error.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from layers.checks import RULES
from layers.checks.framework import CheckError, Rule
from layers.checks.reports import run_checks
from layers.checks.runner import run_rules, snapshot_connections
from layers.profile import load_profile


@pytest.fixture
def probe(engine: Engine) -> Engine:
    """A table outside the layers that a second client writes to during a run."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS runner_probe"))
        conn.execute(text("CREATE TABLE runner_probe (n int)"))
        conn.execute(text("INSERT INTO runner_probe VALUES (1)"))
    return engine


def test_every_worker_sees_the_snapshot_of_the_first_while_others_commit(probe: Engine) -> None:
    with snapshot_connections(probe, 3) as conns:
        assert len({c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in conns}) == 3
        # An inspector's upload commits after the run started: no rule sees it.
        with probe.begin() as writer:
            writer.execute(text("INSERT INTO runner_probe VALUES (2)"))
        seen = [c.execute(text("SELECT count(*) FROM runner_probe")).scalar_one() for c in conns]
        assert seen == [1, 1, 1]
        with pytest.raises(Exception, match="read-only transaction"):
            conns[1].execute(text("INSERT INTO runner_probe VALUES (3)"))
    with probe.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runner_probe")).scalar_one() == 2


def test_rules_run_side_by_side_and_come_back_in_the_asked_order(engine: Engine) -> None:
    rules = list(RULES.values())

    def backend(rule: Rule, conn: Connection) -> int:
        conn.execute(text("SELECT pg_sleep(0.05)"))
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    pids = run_rules(engine, rules, backend, workers=2)
    assert list(pids) == list(RULES)
    assert len(set(pids.values())) == 2


def test_a_rule_that_fails_stops_the_run_with_its_own_error(engine: Engine) -> None:
    started: list[str] = []

    def work(rule: Rule, conn: Connection) -> Any:
        started.append(rule.id)
        if rule.id == "lamp-spacing":  # the heaviest: it starts first
            raise CheckError("parameters of lamp-spacing: road_tolerance_m: bad")
        conn.execute(text("SELECT pg_sleep(0.2)"))
        return rule.id

    with pytest.raises(CheckError, match="road_tolerance_m"):
        run_rules(engine, list(RULES.values()), work, workers=2)
    assert len(started) < len(RULES)  # the queued rules were cancelled


def test_a_bad_scope_or_rule_is_refused_before_any_rule_runs(engine: Engine) -> None:
    with pytest.raises(CheckError, match="scope 'grid:12'"):
        run_checks(engine, load_profile(), list(RULES), "grid:12")
    with pytest.raises(CheckError, match="unknown rule 'lamp-count'"):
        run_checks(engine, load_profile(), ["lamp-spacing", "lamp-count"], "all")
