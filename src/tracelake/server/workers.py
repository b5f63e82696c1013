"""Background workers that run inside the server process."""
from __future__ import annotations

import logging
import threading

from tracelake.server.context import AppContext

log = logging.getLogger("tracelake.server.workers")


class RetentionWorker:
    """Applies the retention policy (max age, max traces per experiment) every interval."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        s = self.ctx.settings
        return s.retention_max_age_days > 0 or s.retention_max_traces > 0

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="tracelake-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_once(self) -> int:
        s = self.ctx.settings
        max_age_ms = int(s.retention_max_age_days * 86_400_000) if s.retention_max_age_days > 0 else None
        max_traces = s.retention_max_traces or None
        return self.ctx.store.apply_retention(max_age_ms, max_traces)

    def _run(self) -> None:
        while not self._stop.wait(self.ctx.settings.retention_interval_s):
            try:
                removed = self.run_once()
                if removed:
                    log.info("retention removed %d traces", removed)
            except Exception:  # keep the worker alive; the next pass retries
                log.exception("retention pass failed")
