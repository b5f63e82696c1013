"""``LakeWorker``: the lake sync and table maintenance beside the server.

Two ways to run it, same loop:
- a thread of the server process (``start()``; embedded apps and tests);
- a child process (``start(process=True)``; ``tracelake server``, unless ``lake_sync_process``
  is off). It runs at a lower priority (``LAKE_PROCESS_NICE``): under an ingest burst that
  takes both cores the lake falls behind and catches up after, instead of slowing answers.
  Reading changes and building Arrow columns is Python work: in its own process it no longer
  competes with ingest for the server's interpreter lock, and uses another core, for the
  memory of a second interpreter with pyarrow and deltalake loaded. The child opens its own
  store connection from the settings. It waits between passes on a pipe from the server, so
  it exits when the server asks, and also when the server is gone (the pipe reads EOF).
"""
from __future__ import annotations

import importlib.abc
import logging
import multiprocessing
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from tracelake.settings import Settings
from tracelake.store.sql.store import SqlStore

if TYPE_CHECKING:
    from tracelake.lake.storage import Lake
    from tracelake.lake.sync import LakeSync

# pyarrow, deltalake and the sync code are imported where the sync runs (the thread, or the
# child process): a server whose lake runs in a child does not pay their memory.

log = logging.getLogger("tracelake.lake")


# Smaller chunks than ``tracelake lake sync``'s: a chunk's rows are held in memory while it
# lands, and the server's memory must stay bounded under sustained ingest (the lake process
# peaked at ~290 MB with 10,000-span chunks, ~250 MB with 5,000; a commit per chunk stays cheap).
SERVER_CHUNKS = (1_000, 5_000)  # ChunkLimits(max_traces, max_spans)

LAKE_PROCESS_NICE = 19  # the lowest priority: the lake takes only CPU that ingest leaves
LAKE_SQLITE_CACHE_KIB = 8 * 1024


def lake_from_settings(settings: Settings) -> Lake:
    from tracelake.lake.storage import Lake

    return Lake.at(settings.lake, catalog=settings.lake_catalog)


class LakeWorker:
    """Syncs every ``lake_sync_interval_s`` (0 = off) and maintains the tables every
    ``lake_maintenance_interval_s`` (0 = never), in one thread so the two never race
    each other (a separate ``tracelake lake sync`` process may; see ``writer``)."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.settings = settings
        self.store = store
        self.lake = lake_from_settings(settings)
        self._sync: LakeSync | None = None
        self._stop: Any = threading.Event()
        self._thread: threading.Thread | None = None
        self.process: Any = None  # the child process, in process mode

    @property
    def enabled(self) -> bool:
        return self.settings.lake_sync_interval_s > 0

    def start(self, process: bool = False) -> None:
        if not self.enabled:
            return
        if process:
            ctx = multiprocessing.get_context("spawn")  # never fork a process that has threads
            child_end, self._pipe = ctx.Pipe(duplex=False)
            self.process = ctx.Process(target=_child_main, args=(self.settings, child_end),
                                       name="tracelake-lake", daemon=True)
            self.process.start()
            child_end.close()
            return
        self._thread = threading.Thread(target=self._run, name="tracelake-lake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self.process is not None:
            self._pipe.close()  # the child reads EOF: it ends after the pass in flight, if any
            self.process.join(timeout=60)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=10)

    @property
    def sync(self) -> LakeSync:
        if self._sync is None:
            from tracelake.lake.source import ChunkLimits
            from tracelake.lake.sync import LakeSync

            self._sync = LakeSync(self.store, self.lake, ChunkLimits(*SERVER_CHUNKS))
        return self._sync

    def maintain_once(self) -> None:
        from tracelake.lake.catalog import Catalog
        from tracelake.lake.maintenance import maintain

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


class _PipeStop:
    """The child's stop signal: anything on the pipe from the server, or its end closing."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def wait(self, timeout: float) -> bool:
        return bool(self.conn.poll(timeout))

    def set(self) -> None:  # pragma: no cover - the child never stops itself this way
        pass


class _WithoutPandas(importlib.abc.MetaPathFinder):
    """pyarrow imports pandas, when installed, at its first conversion of Python values, only to
    ask whether they are pandas objects; the sync never hands it any. Refusing the import
    (pyarrow then carries on without pandas) keeps ~50 MB out of the lake process."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("the lake sync process runs without pandas")
        return None


def _child_main(settings: Settings, conn: Any) -> None:
    """The lake sync process: its own store connection, the same loop as the thread."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tracelake.server.memory import tune_server_process

    tune_server_process()
    sys.meta_path.insert(0, _WithoutPandas())
    try:  # ingest answers first; the lake catches up when the server has spare CPU
        os.nice(LAKE_PROCESS_NICE)
    except OSError:  # pragma: no cover - not allowed here: run at the server's priority
        pass
    import pyarrow as pa

    # glibc malloc gives a landed chunk's buffers back; pyarrow's default pool keeps them
    # (peak RSS of a 50,000-span catch-up: 289 vs 327 MB, same CPU).
    pa.set_memory_pool(pa.system_memory_pool())
    # It reads each chunk once, in order: a small page cache is enough (the OS caches the file).
    store = SqlStore.from_settings(settings, migrate=False, sqlite_cache_kib=LAKE_SQLITE_CACHE_KIB)
    try:
        worker = LakeWorker(store, settings)
        worker._stop = _PipeStop(conn)
        worker._run()
    finally:
        store.close()


__all__ = ["LakeWorker", "lake_from_settings"]
