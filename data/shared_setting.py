"""Process-wide interpreter settings changed while at least one caller needs them.

An upload changes two interpreter settings while it runs (the cyclic garbage collector, the
GIL switch interval). They are process-wide, so concurrent uploads share the change: the
first caller applies it, the last one restores what was there before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedSetting(Generic[T]):
    """A context manager: `apply()` returns the previous value, `restore(previous)` puts it back."""

    def __init__(self, apply: Callable[[], T], restore: Callable[[T], None]) -> None:
        self._apply = apply
        self._restore = restore
        self._lock = threading.Lock()
        self._depth = 0
        self._previous: T | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._previous = self._apply()
            self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                previous, self._previous = self._previous, None
                self._restore(previous)  # type: ignore[arg-type]
