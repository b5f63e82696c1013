"""``LakeSync``: lands the store's changes in the lake tables, exactly once, chunk by chunk.

Each lake table keeps its own watermark: the version of the application transaction
``tracelake.sync`` committed with its rows (see ``writer``). A sync step

1. reads the watermarks, ``low`` = the smallest (-1 for a table never written);
2. plans a chunk ``(low, high]`` of bounded size (``source.ChangeReader.plan``) and reads it;
3. for each table still below ``high``: takes the changes above *its* watermark and commits
   them with version ``high`` — traces and assessments by MERGE, unless every trace in the
   chunk was created after the table's watermark and nothing was deleted (then a plain
   append: the rows cannot be in the table yet); spans always by append (a span never
   changes), with a DELETE/MERGE only when the chunk holds deletions;
4. once every table is at ``high``, forgets the tombstones up to it.

A crash between two commits leaves tables at different watermarks: the next step re-reads
from the smallest and each table skips what it already has. A crash inside a commit leaves
only unreferenced data files (removed by vacuum): Delta commits are atomic.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.compute as pc

from tracelake.lake.source import ChangeReader, ChangeSet, ChunkLimits, assessments_table, spans_table, traces_table
from tracelake.lake.storage import Lake
from tracelake.lake.tables import ASSESSMENTS, SPANS, SYNCED, TRACES, TableSpec
from tracelake.lake.writer import CommitResult, DeltaWriter
from tracelake.store.sql.store import SqlStore

log = logging.getLogger("tracelake.lake")

APP_ID = "tracelake.sync"
Hook = Callable[[str], None]


@dataclass(slots=True)
class SyncResult:
    chunks: int = 0
    traces: int = 0  # trace rows landed (new or updated)
    spans: int = 0
    assessments: int = 0
    deleted: int = 0  # traces removed (tombstones applied)
    watermark: int | None = None  # every synced table is at least here
    commits: list[CommitResult] = field(default_factory=list)


class LakeSync:
    """Syncs one ``SqlStore`` into one ``Lake``. ``hook(event)`` is called at each step
    (``read``, ``committed:<table>``, ``chunk``) — for tests that stop the process there."""

    def __init__(self, store: SqlStore, lake: Lake, limits: ChunkLimits | None = None,
                 hook: Hook | None = None) -> None:
        self.store = store
        self.lake = lake
        self.limits = limits or ChunkLimits()
        self.reader = ChangeReader(store)
        self.writer = DeltaWriter(lake)
        self._hook = hook

    def watermarks(self) -> dict[str, int | None]:
        return {spec.name: self.writer.watermark(spec, APP_ID) for spec in SYNCED}

    def pending(self) -> bool:
        marks = self.watermarks().values()
        low = min(-1 if m is None else m for m in marks)
        return self.reader.current_seq() > low

    def sync_once(self, max_chunks: int | None = None) -> SyncResult:
        """Sync until the lake has every change committed before this call started (or
        ``max_chunks`` chunks were landed)."""
        result = SyncResult()
        target = self.reader.current_seq()
        while max_chunks is None or result.chunks < max_chunks:
            marks = {spec.name: _mark(self.writer.watermark(spec, APP_ID)) for spec in SYNCED}
            low = min(marks.values())
            result.watermark = low
            if low >= target:
                break
            high = self.reader.plan(low, self.limits)
            if high is None:
                break
            changes = self.reader.read(low, high)
            self._emit("read")
            for spec in SYNCED:
                if marks[spec.name] < high:
                    commit = self._commit(spec, changes, marks[spec.name], result)
                    result.commits.append(commit)
                    self._emit(f"committed:{spec.name}")
            after = min(_mark(self.writer.watermark(spec, APP_ID)) for spec in SYNCED)
            if after < high:  # a bug, not a race: never spin on a chunk that does not land
                raise RuntimeError(f"lake sync did not advance to {high} (tables at {after})")
            self.reader.prune_tombstones(high)
            result.chunks += 1
            result.watermark = high
            self._emit("chunk")
        return result

    def _commit(self, spec: TableSpec, changes: ChangeSet, mark: int, result: SyncResult) -> CommitResult:
        high = changes.high
        deleted = {tid for tid, seq in changes.tombstones if seq > mark}
        if spec is SPANS:
            rows = spans_table(changes.spans)
            if rows.num_rows and pc.min(rows["change_seq"]).as_py() <= mark:  # this table is ahead of the chunk's low
                rows = rows.filter(pc.greater(rows["change_seq"], mark))
            result.spans += rows.num_rows
            if deleted:
                return self.writer.upsert(SPANS, rows, APP_ID, high, delete=deleted)
            return self.writer.append(SPANS, rows, APP_ID, high)
        fresh = [t for t in changes.traces if t["change_seq"] > mark]
        # Traces created after the table's watermark cannot be in it yet.
        known = {t["trace_id"] for t in fresh if t["_first_seq"] <= mark}
        if spec is TRACES:
            result.traces += len(fresh)
            result.deleted += len(deleted)
            rows = traces_table(fresh)
            if known or deleted:
                return self.writer.upsert(TRACES, rows, APP_ID, high, delete=deleted)
            return self.writer.append(TRACES, rows, APP_ID, high)
        assert spec is ASSESSMENTS
        ids = {t["trace_id"] for t in fresh}
        found = [a for a in changes.assessments if a["trace_id"] in ids]
        result.assessments += len(found)
        rows = assessments_table(found)
        if known or deleted:
            return self.writer.upsert(ASSESSMENTS, rows, APP_ID, high, replace=known, delete=deleted)
        return self.writer.append(ASSESSMENTS, rows, APP_ID, high)

    def _emit(self, event: str) -> None:
        if self._hook is not None:
            self._hook(event)

    def run_forever(self, interval_s: float, stop: Callable[[float], bool]) -> None:
        """Sync every ``interval_s`` until ``stop(timeout)`` (e.g. ``Event.wait``) returns True."""
        while True:
            started = time.monotonic()
            try:
                self.sync_once()
            except Exception:  # keep syncing: the next pass redoes the failed chunk exactly once
                log.exception("lake sync pass failed")
            if stop(max(0.0, interval_s - (time.monotonic() - started))):
                return


def _mark(version: int | None) -> int:
    return -1 if version is None else version


__all__ = ["APP_ID", "LakeSync", "SyncResult"]
