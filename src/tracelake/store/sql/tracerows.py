"""``traces`` rows: building, writing (set-based) and turning into ``TraceInfo``.

``load_trace_infos`` reads tags, metadata and assessments for a whole page of traces in
three queries, never one per trace.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from tracelake.entities import Assessment, TraceInfo
from tracelake.entities.trace import TraceState
from tracelake.store.sql.assessment_rows import assessment_from_row
from tracelake.store.sql.core import fast_insert, in_chunks, now_ms
from tracelake.store.sql.schema import assessments, trace_metadata, trace_tags, traces

TRACE_COLUMNS = tuple(c.name for c in traces.columns)
_trace_tuple = operator.itemgetter(*TRACE_COLUMNS)
_MUTABLE = ("client_request_id", "request_time", "execution_duration", "state", "name", "root_span_id",
            "request_preview", "response_preview", "session_id", "user_id", "span_count", "input_tokens",
            "output_tokens", "total_tokens", "cost", "size_bytes")


@dataclass(slots=True)
class TraceRow:
    values: dict[str, Any]  # the row as it will be written
    original: dict[str, Any] | None  # the row as read; None for a new trace


_NEW_TRACE: dict[str, Any] = {
    "trace_key": 0, "trace_id": "", "experiment_id": 0, "client_request_id": None,
    "request_time": 0, "execution_duration": None, "state": TraceState.IN_PROGRESS, "name": None,
    "root_span_id": None, "request_preview": None, "response_preview": None, "session_id": None,
    "user_id": None, "span_count": 0, "input_tokens": None, "output_tokens": None, "total_tokens": None,
    "cost": None, "size_bytes": 0, "seq": 0, "first_seq": 0,
}
assert set(_NEW_TRACE) == set(TRACE_COLUMNS), "tracerows._NEW_TRACE must name every traces column"


def new_trace_row(trace_id: str, experiment_id: int, trace_key: int) -> TraceRow:
    """A trace not stored yet; ``trace_key`` from ``core.next_trace_key`` in the same transaction."""
    values = _NEW_TRACE.copy()  # one C-level copy, then the four values of this trace
    values["trace_key"] = trace_key
    values["trace_id"] = trace_id
    values["experiment_id"] = experiment_id
    values["request_time"] = now_ms()
    return TraceRow(values, None)


def write_trace_rows(conn: Connection, seq: int, rows: Sequence[TraceRow], force: set[str]) -> None:
    """INSERT the new rows, UPDATE the changed ones (or those in ``force``), all with ``seq``."""
    new, changed = [], []
    for tr in rows:
        tr.values["seq"] = seq
        if tr.original is None:
            tr.values["first_seq"] = seq
            new.append(tr.values)
        elif tr.values["trace_id"] in force or any(tr.values[k] != tr.original[k] for k in _MUTABLE):
            changed.append({"b_trace_id": tr.values["trace_id"], "seq": seq, **{k: tr.values[k] for k in _MUTABLE}})
    if new:
        fast_insert(conn, traces, TRACE_COLUMNS, [_trace_tuple(v) for v in new])
    if changed:
        conn.execute(update(traces).where(traces.c.trace_id == bindparam("b_trace_id")), changed)


def write_tags_and_metadata(conn: Connection, tags: dict[tuple[str, str], str],
                            metadata: dict[tuple[str, str], str]) -> None:
    """Tags: last value wins. Metadata: the first value stored wins (it is immutable)."""
    if tags:
        fast_insert(conn, trace_tags, ("trace_id", "key", "value"),
                    [(t, k[:250], v) for (t, k), v in tags.items()], conflict="update:value")
    if metadata:
        fast_insert(conn, trace_metadata, ("trace_id", "key", "value"),
                    [(t, k[:250], v) for (t, k), v in metadata.items()], conflict="nothing")


def load_trace_infos(conn: Connection, rows: Sequence[Row[Any]]) -> list[TraceInfo]:
    """TraceInfos for ``traces`` rows, with tags, metadata and assessments (3 queries)."""
    ids = [r.trace_id for r in rows]
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    meta: dict[str, dict[str, str]] = {i: {} for i in ids}
    found: dict[str, list[Assessment]] = {i: [] for i in ids}
    if ids:
        for r in in_chunks(conn, lambda part: select(trace_tags).where(trace_tags.c.trace_id.in_(part)), ids):
            tags[r.trace_id][r.key] = r.value
        for r in in_chunks(conn, lambda part: select(trace_metadata).where(trace_metadata.c.trace_id.in_(part)), ids):
            meta[r.trace_id][r.key] = r.value
        for r in in_chunks(conn, lambda part: select(assessments).where(assessments.c.trace_id.in_(part))
                           .order_by(assessments.c.create_time, assessments.c.assessment_id), ids):
            found[r.trace_id].append(assessment_from_row(r))
    return [trace_info_from_row(r, tags[r.trace_id], meta[r.trace_id], found[r.trace_id]) for r in rows]


def trace_info_from_row(row: Row[Any], tags: dict[str, str], metadata: dict[str, str],
                        found: list[Assessment]) -> TraceInfo:
    return TraceInfo(
        trace_id=row.trace_id,
        experiment_id=str(row.experiment_id),
        request_time=row.request_time,
        state=row.state,
        execution_duration=row.execution_duration,
        client_request_id=row.client_request_id,
        name=row.name,
        request_preview=row.request_preview,
        response_preview=row.response_preview,
        trace_metadata=metadata,
        tags=tags,
        assessments=found,
        span_count=row.span_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        total_tokens=row.total_tokens,
        cost=row.cost,
    )
