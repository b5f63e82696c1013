"""Builders of spans and batches for the SQL store tests."""
from __future__ import annotations

import itertools
import uuid

from tracelake.entities import Span
from tracelake.store.base import SpanBatch, TraceUpdate

T0_NS = 1_700_000_000_000_000_000  # a fixed epoch (ns): minute 28_333_333
MS = 1_000_000
_span_ids = itertools.count(1)


def new_trace_hex() -> str:
    return uuid.uuid4().hex


def span_id() -> str:
    return f"{next(_span_ids):016x}"


def make_span(trace_hex: str, sid: str | None = None, parent: str | None = None, name: str = "step",
              start_ms: int = 0, duration_ms: int | None = 10, status: str = "OK", **fields: object) -> Span:
    start = T0_NS + start_ms * MS
    return Span(trace_id=trace_hex, span_id=sid or span_id(), parent_span_id=parent, name=name,
                start_time_ns=start, end_time_ns=None if duration_ms is None else start + duration_ms * MS,
                status_code=status, **fields)  # type: ignore[arg-type]


def make_trace(trace_hex: str | None = None, children: int = 4, root_ms: int = 100, status: str = "OK",
               start_ms: int = 0, **root_fields: object) -> list[Span]:
    """A root span (``root_ms`` long) and ``children`` child spans, root first."""
    tid = trace_hex or new_trace_hex()
    root = make_span(tid, name="root", start_ms=start_ms, duration_ms=root_ms, status=status, **root_fields)
    kids = [make_span(tid, parent=root.span_id, name=f"child-{i}", start_ms=start_ms + 1 + i, duration_ms=5)
            for i in range(children)]
    return [root, *kids]


def batch(experiment_id: str, spans: list[Span], **trace_fields: object) -> SpanBatch:
    """A batch; ``trace_fields`` (tags, metadata, client_request_id) become one TraceUpdate."""
    updates = []
    if trace_fields:
        updates.append(TraceUpdate(trace_id="tr-" + spans[0].trace_id, experiment_id=experiment_id,
                                   **trace_fields))  # type: ignore[arg-type]
    return SpanBatch(experiment_id=experiment_id, spans=spans, traces=updates)
