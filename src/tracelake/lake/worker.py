"""``LakeWorker``: the lake sync and table maintenance as a background thread of the server."""
from __future__ import annotations

import logging
import threading
import time

from tracelake.lake.catalog import Catalog
from tracelake.lake.maintenance import maintain
from tracelake.lake.storage import Lake
from tracelake.lake.sync import LakeSync
from tracelake.settings import Settings
from tracelake.store.sql.store import SqlStore

log = logging.getLogger("tracelake.lake")


def lake_from_settings(settings: Settings) -> Lake:
    return Lake.at(settings.lake, catalog=settings.lake_catalog)


class LakeWorker:
    """Syncs every ``lake_sync_interval_s`` (0 = off) and maintains the tables every
    ``lake_maintenance_interval_s`` (0 = never), in one thread so the two never race
    each other (a separate ``tracelake lake sync`` process may; see ``writer``)."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.settings = settings
        self.lake = lake_from_settings(settings)
        self.sync = LakeSync(store, self.lake)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.lake_sync_interval_s > 0

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="tracelake-lake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def maintain_once(self) -> None:
        for spec in Catalog(self.lake).specs():  # the synced tables and any the gateway created
            result = maintain(self.lake, spec, self.settings.lake_vacuum_retention_hours)
            if result is not None and (result.files_removed or result.vacuumed):
                log.info("lake maintenance %s", result)

    def _run(self) -> None:
        interval = self.settings.lake_sync_interval_s
        every = self.settings.lake_maintenance_interval_s
        next_maintenance = time.monotonic() + every
        wait = interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self.sync.sync_once()
                if every > 0 and time.monotonic() >= next_maintenance:
                    next_maintenance = time.monotonic() + every
                    self.maintain_once()
            except Exception:  # keep the worker alive: the next pass redoes the chunk exactly once
                log.exception("lake sync pass failed")
            wait = max(0.0, interval - (time.monotonic() - started))  # a pass starts every interval


__all__ = ["LakeWorker", "lake_from_settings"]
