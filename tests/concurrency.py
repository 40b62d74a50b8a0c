"""Clients that act at the same instant: each call starts when all are ready."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def at_once(work: Callable[[T], object], args: Sequence[T], timeout: float = 120.0) -> None:
    """`work(a)` for every `a`, each on its own thread, released together by a barrier.

    Returns when all have finished; the first exception any of them raised (a failed
    assertion included) is raised here, so a test cannot pass over a failing client.
    """
    start = threading.Barrier(len(args))
    errors: list[BaseException] = []

    def run(arg: T) -> None:
        try:
            start.wait()
            work(arg)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a client did not finish in time"
    if errors:
        raise errors[0]
