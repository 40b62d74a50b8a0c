"""Several rules at once, side by side on one database snapshot.

Why: each rule is one or two set-based statements that a single backend runs on a
single core, so a whole-city run of all rules took the sum of their times while the
other cores idled. Here each worker thread holds its own connection, and all of them
read the snapshot the first one exported (`pg_export_snapshot`, REPEATABLE READ): the
rules of one report or scorecard see the same data, as if run in one transaction,
even while inspectors upload. The heaviest rules start first so that the workers
finish together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from queue import SimpleQueue
from typing import TypeVar

from sqlalchemy import Connection, Engine, text

from layers.checks.framework import Rule

T = TypeVar("T")


def _isolated(engine: Engine) -> Connection:
    """A connection whose next transaction is REPEATABLE READ, READ ONLY."""
    conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    conn.execute(text("SET TRANSACTION READ ONLY"))
    return conn


@contextmanager
def snapshot_connections(engine: Engine, count: int) -> Iterator[list[Connection]]:
    """`count` connections in read-only transactions that all see one snapshot.

    The first exports its snapshot and the others import it before any query; the
    exported snapshot lives as long as the first transaction, i.e. this block.
    """
    with ExitStack() as stack:
        leader = stack.enter_context(_isolated(engine))
        conns = [leader]
        if count > 1:
            snapshot = leader.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            # A utility statement takes no bound parameters; the id comes from the server.
            if not re.fullmatch(r"[0-9A-F]+-[0-9A-F]+-[0-9]+", snapshot):
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
            for _ in range(count - 1):
                follower = stack.enter_context(_isolated(engine))
                follower.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                conns.append(follower)
        yield conns


def run_rules(
    engine: Engine,
    rules: Sequence[Rule],
    work: Callable[[Rule, Connection], T],
    workers: int,
) -> dict[str, T]:
    """`work(rule, conn)` for every rule, on up to `workers` connections sharing a snapshot.

    Results by rule id, in the order of `rules`. A rule's error (a CheckError naming a
    bad parameter, say) is raised here once the others have stopped; nothing is written.
    """
    count = max(1, min(workers, len(rules)))
    heaviest_first = sorted(rules, key=lambda r: -r.relative_cost)
    with snapshot_connections(engine, count) as conns:
        if count == 1:
            done = {rule.id: work(rule, conns[0]) for rule in heaviest_first}
        else:
            idle: SimpleQueue[Connection] = SimpleQueue()
            for conn in conns:
                idle.put(conn)

            def one(rule: Rule) -> T:
                conn = idle.get()
                try:
                    return work(rule, conn)
                finally:
                    idle.put(conn)

            with ThreadPoolExecutor(count, thread_name_prefix="check") as pool:
                futures = {rule.id: pool.submit(one, rule) for rule in heaviest_first}
                finished, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
                failed = next((f for f in finished if f.exception() is not None), None)
                if failed is not None:
                    for future in futures.values():
                        future.cancel()
                    wait(futures.values())
                    raise failed.exception()  # type: ignore[misc]
                done = {rule_id: future.result() for rule_id, future in futures.items()}
    return {rule.id: done[rule.id] for rule in rules}
