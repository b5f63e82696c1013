"""Ingest: many span batches in one transaction (group commit), set-based.

One group of batches costs a handful of statements whatever its size:

1. outside the transaction: validate each batch, build span rows, read the experiments,
   write offloaded span content to artifact storage (so the lock is not held during uploads);
2. in the write transaction (see ``core.StoreCore.write``): read the existing rows of the
   touched traces, check limits batch by batch (a failing batch is dropped alone), then
   ``INSERT spans ... ON CONFLICT DO NOTHING RETURNING`` (what comes back is what is new:
   re-sent spans are counted as duplicates and never added twice), one INSERT of new
   traces, one executemany UPDATE of the others, tags, metadata, rollups and the
   experiments' trace counts.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from tracelake.errors import InvalidRequest, LimitExceeded, NotFound, TracelakeError
from tracelake.store.base import IngestResult, SpanBatch, TraceUpdate
from tracelake.store.sql.core import (
    StoreCore,
    exp_id_int,
    fast_insert,
    in_chunks,
    next_trace_key,
    norm_trace_id,
)
from tracelake.store.sql.rollups import RollupDelta, RollupKey, apply_rollups
from tracelake.store.sql.schema import experiments, spans, traces
from tracelake.store.sql.spanrows import (
    ROW_CONTENT_URI,
    ROW_SEQ,
    ROW_TRACE_KEY,
    SPAN_COLUMNS,
    SpanRecord,
    content_uri,
    span_record,
)
from tracelake.store.sql.tracerows import (
    TraceRow,
    new_trace_row,
    write_tags_and_metadata,
    write_trace_rows,
)
from tracelake.store.sql.tracestate import Usage, apply_usage, merge_update

Outcome = IngestResult | Exception


@dataclass(slots=True)
class PreparedBatch:
    """A batch after static validation: rows built, grouped by trace, deduplicated within the
    batch. Building it needs no database, so request handlers do it (``prepare_spans``) while
    the writer thread is busy committing the previous group."""

    experiment_id: int
    span_count: int  # spans offered, duplicates included
    by_trace: dict[str, list[SpanRecord]] = field(default_factory=dict)
    updates: dict[str, TraceUpdate] = field(default_factory=dict)
    usage: dict[str, Usage] = field(default_factory=dict)  # per trace, if every span is new
    duplicates_in_batch: int = 0
    index: int = -1  # its slot in the group being written

    @property
    def trace_ids(self) -> set[str]:
        return set(self.by_trace) | set(self.updates)

    def records(self) -> list[SpanRecord]:
        return [rec for recs in self.by_trace.values() for rec in recs]


class IngestMixin(StoreCore):
    def write_spans(self, batches: list[SpanBatch]) -> list[IngestResult]:
        """All batches commit together in one transaction, or (first error raised) none does."""
        outcomes = self._ingest(batches, all_or_nothing=True)
        return [o for o in outcomes if isinstance(o, IngestResult)]

    def write_spans_partial(self, batches: list[SpanBatch | PreparedBatch]) -> list[Outcome]:
        """Group commit for the writer: valid batches commit in one transaction; a batch that
        fails validation or a limit gets its exception in its slot and is not written."""
        return self._ingest(batches, all_or_nothing=False)

    def prepare_spans(self, batch: SpanBatch) -> PreparedBatch:
        """Validate ``batch`` and build its rows (no database access; thread-safe). Raises
        ``InvalidRequest``/``LimitExceeded`` for what the batch alone shows is wrong."""
        prep = PreparedBatch(exp_id_int(batch.experiment_id), len(batch.spans))
        seen: set[tuple[str, str]] = set()
        offload = self.limits.offload_span_bytes
        tids: dict[str, str] = {}
        by_trace, usage = prep.by_trace, prep.usage
        for span in batch.spans:
            tid = tids.get(span.trace_id)
            if tid is None:
                tid = tids[span.trace_id] = norm_trace_id(span.trace_id)
            rec = span_record(span, offload, tid)
            key = (tid, span.span_id)
            if key in seen:
                prep.duplicates_in_batch += 1
                continue
            seen.add(key)
            recs = by_trace.get(tid)
            if recs is None:
                recs = by_trace[tid] = []
                usage[tid] = Usage()
            recs.append(rec)
            usage[tid].add(rec)
        for upd in batch.traces:
            tid = norm_trace_id(upd.trace_id)
            if upd.experiment_id and exp_id_int(upd.experiment_id) != prep.experiment_id:
                raise InvalidRequest(f"Trace {tid} names experiment {upd.experiment_id!r} but the batch is for "
                                     f"experiment {batch.experiment_id!r}")
            merged = prep.updates.get(tid)
            if merged is None:
                prep.updates[tid] = TraceUpdate(tid, str(prep.experiment_id), dict(upd.tags), dict(upd.metadata),
                                                upd.client_request_id)
            else:
                merged.tags.update(upd.tags)
                for k, v in upd.metadata.items():
                    merged.metadata.setdefault(k, v)
                merged.client_request_id = upd.client_request_id or merged.client_request_id
        # Cheap checks on the batch alone, before anything is uploaded.
        for tid, u in prep.usage.items():
            self._check_trace(tid, u.spans, u.size)
        return prep

    # -- the pipeline ----------------------------------------------------------------
    def _ingest(self, batches: list[SpanBatch | PreparedBatch], all_or_nothing: bool) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batches)
        preps: list[PreparedBatch] = []
        for i, batch in enumerate(batches):
            try:
                prep = batch if isinstance(batch, PreparedBatch) else self.prepare_spans(batch)
            except TracelakeError as exc:
                if all_or_nothing:
                    raise
                outcomes[i] = exc
                continue
            prep.index = i
            preps.append(prep)
        preps = self._offload(preps, outcomes, all_or_nothing)
        if preps:
            self._write_group(preps, outcomes, all_or_nothing)
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    def _check_trace(self, trace_id: str, span_count: int, size: int) -> None:
        lim = self.limits
        if span_count > lim.max_spans_per_trace:
            raise LimitExceeded(f"Trace {trace_id} would have {span_count} spans; the limit is "
                                f"{lim.max_spans_per_trace} spans per trace")
        if size > lim.max_trace_bytes:
            raise LimitExceeded(f"Trace {trace_id} would hold {size} bytes of span content; the limit is "
                                f"{lim.max_trace_bytes} bytes per trace")

    def _offload(self, preps: list[PreparedBatch], outcomes: list[Outcome | None],
                 all_or_nothing: bool) -> list[PreparedBatch]:
        """Check the experiments and write large span content to their artifact locations."""
        exp_ids = sorted({p.experiment_id for p in preps})
        with self.read() as conn:
            rows = in_chunks(conn, lambda ids: select(experiments.c.experiment_id, experiments.c.lifecycle_stage,
                                                      experiments.c.artifact_location)
                             .where(experiments.c.experiment_id.in_(ids)), exp_ids)
        found = {r.experiment_id: r for r in rows}
        kept = []
        for prep in preps:
            try:
                exp = found.get(prep.experiment_id)
                if exp is None:
                    raise NotFound(f"No experiment with id '{prep.experiment_id}'")
                if exp.lifecycle_stage != "active":
                    raise InvalidRequest(f"Experiment '{prep.experiment_id}' is deleted")
                for rec in prep.records():
                    if rec.blob is not None:
                        uri = content_uri(exp.artifact_location, rec.trace_id, rec.span.span_id)
                        self.artifacts.write_bytes(uri, rec.blob)
                        rec.row[ROW_CONTENT_URI] = uri
                        rec.blob = None
            except Exception as exc:  # one batch's storage failure must not fail its neighbours
                if all_or_nothing:
                    raise
                outcomes[prep.index] = exc
                continue
            kept.append(prep)
        return kept

    def _write_group(self, preps: list[PreparedBatch], outcomes: list[Outcome | None], all_or_nothing: bool) -> None:
        with self.write() as tx:
            conn = tx.conn
            all_ids = sorted({tid for p in preps for tid in p.trace_ids})
            existing = {r.trace_id: dict(r._mapping) for r in
                        in_chunks(conn, lambda ids: select(traces).where(traces.c.trace_id.in_(ids)), all_ids)}
            accepted = self._check_limits(conn, preps, existing, outcomes, all_or_nothing)
            if not accepted:
                return
            keys = {tid: row["trace_key"] for tid, row in existing.items()}
            key = next_trace_key(conn)
            for prep in accepted:  # new traces get increasing keys, in arrival order
                for tid in (*prep.by_trace, *prep.updates):
                    if tid not in keys:
                        keys[tid] = key
                        key += 1
            seq = tx.seq
            for prep in accepted:  # the lake sync reads new spans by this seq
                for tid, recs in prep.by_trace.items():
                    trace_key = keys[tid]
                    for rec in recs:
                        row = rec.row
                        row[ROW_SEQ] = seq
                        row[ROW_TRACE_KEY] = trace_key
            inserted, all_new = self._insert_spans(conn, accepted, existing)
            usage = self._count(accepted, inserted, all_new, outcomes)
            self._apply(conn, tx.seq, accepted, existing, usage, keys)

    def _check_limits(self, conn: Connection, preps: list[PreparedBatch], existing: dict[str, dict[str, Any]],
                      outcomes: list[Outcome | None], all_or_nothing: bool) -> list[PreparedBatch]:
        exp_ids = sorted({p.experiment_id for p in preps})
        trace_counts = {r.experiment_id: r.trace_count for r in in_chunks(
            conn, lambda ids: select(experiments.c.experiment_id, experiments.c.trace_count)
            .where(experiments.c.experiment_id.in_(ids)), exp_ids)}
        # Running totals over the group: (experiment, spans, bytes) per trace.
        state = {tid: (r["experiment_id"], r["span_count"], r["size_bytes"]) for tid, r in existing.items()}
        accepted = []
        for prep in preps:
            try:
                changes, new_traces = self._check_batch(conn, prep, state, existing)
                total = trace_counts.get(prep.experiment_id, 0) + new_traces
                if new_traces and total > self.limits.max_traces_per_experiment:
                    raise LimitExceeded(f"Experiment '{prep.experiment_id}' holds the maximum of "
                                        f"{self.limits.max_traces_per_experiment} traces")
            except TracelakeError as exc:
                if all_or_nothing:
                    raise
                outcomes[prep.index] = exc
                continue
            trace_counts[prep.experiment_id] = total
            state.update(changes)
            accepted.append(prep)
        return accepted

    def _check_batch(self, conn: Connection, prep: PreparedBatch, state: dict[str, tuple[int, int, int]],
                     existing: dict[str, dict[str, Any]]) -> tuple[dict[str, tuple[int, int, int]], int]:
        changes: dict[str, tuple[int, int, int]] = {}
        new_traces = 0
        for tid in prep.trace_ids:
            recs = prep.by_trace.get(tid, [])
            exp, count, size = state.get(tid, (prep.experiment_id, 0, 0))
            if tid not in state:
                new_traces += 1
            elif exp != prep.experiment_id:
                raise InvalidRequest(f"Trace {tid} belongs to experiment '{exp}', not '{prep.experiment_id}'")
            add_count, add_size = len(recs), sum(r.size for r in recs)
            lim = self.limits
            if tid in existing and (count + add_count > lim.max_spans_per_trace or size + add_size > lim.max_trace_bytes):
                # Maybe over the limit only because spans are re-sent: discount the stored ones.
                stored = {r.span_id for r in in_chunks(
                    conn, lambda ids, k=existing[tid]["trace_key"]: select(spans.c.span_id)
                    .where(spans.c.trace_key == k, spans.c.span_id.in_(ids)),
                    [r.span.span_id for r in recs])}
                fresh = [r for r in recs if r.span.span_id not in stored]
                add_count, add_size = len(fresh), sum(r.size for r in fresh)
            self._check_trace(tid, count + add_count, size + add_size)
            changes[tid] = (exp, count + add_count, size + add_size)
        return changes, new_traces

    def _insert_spans(self, conn: Connection, accepted: list[PreparedBatch],
                      existing: dict[str, dict[str, Any]]) -> tuple[set[tuple[str, str]], bool]:
        """Insert the spans not stored yet; returns their keys, and whether every span of
        every batch was new.

        Only traces that existed before this group can hold re-sent spans, so only their
        spans are looked up (one tuple-IN query per chunk); under the write lock that
        answer cannot change before the INSERT. ON CONFLICT DO NOTHING stays as a guard.
        """
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        offered = 0
        for prep in accepted:
            for rec in prep.records():
                offered += 1
                rows.setdefault((rec.trace_id, rec.span.span_id), rec.row)
        all_new = len(rows) == offered
        maybe_stored = [(existing[k[0]]["trace_key"], k[1]) for k in rows if k[0] in existing]
        if maybe_stored:
            pair = tuple_(spans.c.trace_key, spans.c.span_id)
            for r in in_chunks(conn, lambda part: select(spans.c.trace_id, spans.c.span_id).where(pair.in_(part)),
                               maybe_stored):
                del rows[(r[0], r[1])]
                all_new = False
        fast_insert(conn, spans, SPAN_COLUMNS, list(rows.values()), conflict="nothing")
        return set(rows), all_new

    def _count(self, accepted: list[PreparedBatch], inserted: set[tuple[str, str]], all_new: bool,
               outcomes: list[Outcome | None]) -> dict[str, Usage]:
        """Per-batch results and per-trace additions, counting each inserted span once."""
        usage: dict[str, Usage] = {}
        if all_new:  # the common case: nothing was re-sent, use the per-batch sums
            for prep in accepted:
                for tid, recs in prep.by_trace.items():
                    got = prep.usage[tid]
                    if tid in usage:
                        usage[tid].merge(got)
                    else:
                        usage[tid] = Usage()
                        usage[tid].merge(got)
                written = sum(len(recs) for recs in prep.by_trace.values())
                outcomes[prep.index] = IngestResult(traces=len(prep.trace_ids), spans_written=written,
                                                    spans_duplicate=prep.duplicates_in_batch)
            return usage
        claimed: set[tuple[str, str]] = set()
        for prep in accepted:
            written = total = 0
            for tid, recs in prep.by_trace.items():
                u = usage.setdefault(tid, Usage())
                for rec in recs:
                    total += 1
                    key = (tid, rec.span.span_id)
                    if key in inserted and key not in claimed:
                        claimed.add(key)
                        written += 1
                        u.add(rec)
            outcomes[prep.index] = IngestResult(traces=len(prep.trace_ids), spans_written=written,
                                                spans_duplicate=total - written + prep.duplicates_in_batch)
        return usage

    def _apply(self, conn: Connection, seq: int, accepted: list[PreparedBatch], existing: dict[str, dict[str, Any]],
               usage: dict[str, Usage], keys: dict[str, int]) -> None:
        rows: dict[str, TraceRow] = {}
        tags: dict[tuple[str, str], str] = {}
        metadata: dict[tuple[str, str], str] = {}
        for prep in accepted:
            for tid in prep.trace_ids:
                tr = rows.get(tid)
                if tr is None:
                    old = existing.get(tid)
                    tr = rows[tid] = TraceRow(dict(old), old) if old else new_trace_row(tid, prep.experiment_id, keys[tid])
                upd = prep.updates.get(tid)
                if upd is not None:
                    merge_update(tr, upd)
                    for k, v in upd.tags.items():
                        tags[(tid, k)] = v
                    for k, v in upd.metadata.items():
                        metadata.setdefault((tid, k), v)
        deltas: dict[RollupKey, RollupDelta] = {}
        for tid, tr in rows.items():
            u = usage.get(tid)
            if u is not None and u.spans:
                apply_usage(tr, u, deltas)
        new_count = Counter(tr.values["experiment_id"] for tr in rows.values() if tr.original is None)
        write_trace_rows(conn, seq, list(rows.values()), force={tid for tid, _ in tags} | {tid for tid, _ in metadata})
        write_tags_and_metadata(conn, tags, metadata)
        apply_rollups(conn, deltas)
        if new_count:
            conn.execute(update(experiments).where(experiments.c.experiment_id == bindparam("b_exp"))
                         .values(trace_count=experiments.c.trace_count + bindparam("b_n")),
                         [{"b_exp": e, "b_n": n} for e, n in new_count.items()])


__all__ = ["IngestMixin", "Outcome"]
