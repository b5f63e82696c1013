"""Token-bucket rate limits for ingest (per server and per experiment)."""
from __future__ import annotations

import threading
import time

from tracelake.errors import RateLimited


class TokenBucket:
    """``rate`` tokens per second, up to ``burst``. ``take()`` raises RateLimited when empty."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst and burst > 0 else max(1.0, 2 * rate)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, what: str, cost: float = 1.0) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= cost:
                self._tokens -= cost
                return
            wait = (cost - self._tokens) / self.rate
        raise RateLimited(f"ingest rate limit of {self.rate:g} requests/s exceeded for {what}; retry later",
                          retry_after=wait)


class IngestLimiter:
    """Holds the server bucket and one bucket per experiment (created on first use)."""

    def __init__(self, server_rate: float, server_burst: int, experiment_rate: float) -> None:
        self.server = TokenBucket(server_rate, server_burst) if server_rate > 0 else None
        self.experiment_rate = experiment_rate
        self._per_experiment: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check_server(self) -> None:
        if self.server is not None:
            self.server.take("this server")

    def check_experiment(self, experiment_id: str) -> None:
        if self.experiment_rate <= 0:
            return
        bucket = self._per_experiment.get(experiment_id)
        if bucket is None:
            with self._lock:
                bucket = self._per_experiment.setdefault(experiment_id, TokenBucket(self.experiment_rate))
        bucket.take(f"experiment {experiment_id}")
