"""Login attempts per user name and client address, counted per process on `app.state`.

In memory, so each worker process counts alone and a restart forgets: enough
to make guessing passwords over HTTP slow, not a global quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class LoginLimiter:
    """At most `per_minute` attempts per (name, address), and 4x that per address."""

    WINDOW_S = 60.0
    MAX_KEYS = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _retry_after(self, key: str, limit: int, now: float) -> float | None:
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.WINDOW_S:
            hits.popleft()
        if len(hits) >= limit:
            return self.WINDOW_S - (now - hits[0])
        return None

    def attempt(self, name: str, address: str) -> int | None:
        """Count one attempt; the seconds to wait if over the limit (then not counted)."""
        now = time.monotonic()
        keys = (
            (f"user:{name.casefold()}|{address}", self.per_minute),
            (f"addr:{address}", 4 * self.per_minute),
        )
        with self._lock:
            if len(self._hits) > self.MAX_KEYS:
                self._forget_idle(now)
            waits = [w for key, limit in keys if (w := self._retry_after(key, limit, now))]
            if waits:
                return max(1, math.ceil(max(waits)))
            for key, _ in keys:
                self._hits[key].append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._hits.items() if not v or now - v[-1] >= self.WINDOW_S]
        for key in idle:
            del self._hits[key]
