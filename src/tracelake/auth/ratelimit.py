"""Failed sign-in attempts, counted per key (a user name, a client address) in a sliding window.

Once a key has ``max_failures`` failures within ``window_s`` seconds, attempts on it are refused
with 429 until the oldest failure leaves the window; this is checked *before* the password is
verified, so a locked key learns nothing more.
"""
from __future__ import annotations

import threading
import time
from collections import deque

from tracelake.errors import RateLimited

_MAX_KEYS = 100_000  # beyond this, expired keys are pruned (an attacker cycling names cannot grow it forever)


class FailureLimiter:
    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def check(self, key: str) -> None:
        """Raise ``RateLimited`` when ``key`` has used up its failures."""
        if self.max_failures <= 0:
            return
        now = time.monotonic()
        with self._lock:
            times = self._live(key, now)
            if times is not None and len(times) >= self.max_failures:
                retry = times[0] + self.window_s - now
                raise RateLimited("too many failed sign-in attempts; try again later", retry_after=retry)

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > _MAX_KEYS:
                for old in list(self._failures):
                    self._live(old, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
