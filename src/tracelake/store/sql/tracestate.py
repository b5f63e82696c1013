"""How newly stored spans and trace updates change a trace row (pure, no SQL).

- Until the root span (no parent) arrives ended, the trace is IN_PROGRESS and starts at its
  earliest span. The root sets state (ERROR if its status is ERROR, else OK), request_time,
  execution_duration, name and the request/response previews.
- When a trace leaves IN_PROGRESS it is counted in the rollup of its minute; usage of spans
  that arrive later is added to that same minute.
- Metadata is immutable (session and user come from the first value); tags are last-wins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracelake.entities.trace import METADATA_SESSION, METADATA_USER, TraceState
from tracelake.store.base import TraceUpdate
from tracelake.store.sql.rollups import RollupDelta, RollupKey, minute_of
from tracelake.store.sql.spanrows import PREVIEW_CHARS, SpanRecord
from tracelake.store.sql.tracerows import TraceRow


@dataclass(slots=True)
class Usage:
    """What newly inserted spans add to one trace."""

    spans: int = 0
    size: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    min_start_ns: int | None = None
    root: SpanRecord | None = None

    def add(self, rec: SpanRecord) -> None:
        span = rec.span
        self.spans += 1
        self.size += rec.size
        inp, out = span.input_tokens, span.output_tokens
        if inp is not None or out is not None:  # most spans carry no usage: skip the sums
            self.input_tokens = add_opt(self.input_tokens, inp)
            self.output_tokens = add_opt(self.output_tokens, out)
        total = span.total_tokens
        if total is None and (inp is not None or out is not None):
            total = (inp or 0) + (out or 0)
        if total is not None:
            self.total_tokens = add_opt(self.total_tokens, total)
        if span.cost is not None:
            self.cost = add_opt(self.cost, span.cost)
        start = span.start_time_ns
        if self.min_start_ns is None or start < self.min_start_ns:
            self.min_start_ns = start
        if self.root is None and not span.parent_span_id and span.end_time_ns is not None:
            self.root = rec

    def merge(self, other: Usage) -> None:
        self.spans += other.spans
        self.size += other.size
        self.input_tokens = add_opt(self.input_tokens, other.input_tokens)
        self.output_tokens = add_opt(self.output_tokens, other.output_tokens)
        self.total_tokens = add_opt(self.total_tokens, other.total_tokens)
        self.cost = add_opt(self.cost, other.cost)
        if other.min_start_ns is not None and (self.min_start_ns is None or other.min_start_ns < self.min_start_ns):
            self.min_start_ns = other.min_start_ns
        self.root = self.root or other.root


def add_opt(a: Any, b: Any) -> Any:
    if b is None:
        return a
    return b if a is None else a + b



def merge_update(tr: TraceRow, upd: TraceUpdate) -> None:
    v = tr.values
    if upd.client_request_id:
        v["client_request_id"] = upd.client_request_id[:250]
    # Metadata is immutable: a value already on the trace wins.
    if v["session_id"] is None and upd.metadata.get(METADATA_SESSION):
        v["session_id"] = upd.metadata[METADATA_SESSION][:250]
    if v["user_id"] is None and upd.metadata.get(METADATA_USER):
        v["user_id"] = upd.metadata[METADATA_USER][:250]


def apply_usage(tr: TraceRow, u: Usage, deltas: dict[RollupKey, RollupDelta]) -> None:
    v = tr.values
    was_done = v["state"] != TraceState.IN_PROGRESS
    had_spans = v["span_count"] > 0
    v["span_count"] += u.spans
    v["size_bytes"] += u.size
    for key in ("input_tokens", "output_tokens", "total_tokens", "cost"):
        v[key] = add_opt(v[key], getattr(u, key))
    if v["root_span_id"] is None:
        if u.min_start_ns is not None:
            start_ms = u.min_start_ns // 1_000_000
            # Until the root arrives the trace starts at its earliest span (an empty
            # trace row created by tags alone has a placeholder time).
            if not was_done and (not had_spans or start_ms < v["request_time"]):
                v["request_time"] = start_ms
        if u.root is not None:
            _set_root(v, u.root, overwrite_state=not was_done)
    if not was_done and v["state"] != TraceState.IN_PROGRESS:
        d = deltas.setdefault((v["experiment_id"], minute_of(v["request_time"])), RollupDelta())
        d.add_request(v["execution_duration"] or 0, v["state"] == TraceState.ERROR)
        d.add_usage(v["input_tokens"], v["output_tokens"], v["cost"])
    elif was_done:
        d = deltas.setdefault((v["experiment_id"], minute_of(v["request_time"])), RollupDelta())
        d.add_usage(u.input_tokens, u.output_tokens, u.cost)


def _set_root(v: dict[str, Any], root: SpanRecord, overwrite_state: bool) -> None:
    span = root.span
    v["root_span_id"] = span.span_id
    v["name"] = (span.name or "")[:500]
    v["request_preview"] = span.inputs[:PREVIEW_CHARS] if span.inputs is not None else None
    v["response_preview"] = span.outputs[:PREVIEW_CHARS] if span.outputs is not None else None
    if overwrite_state:
        v["request_time"] = span.start_time_ns // 1_000_000
        v["execution_duration"] = max(span.end_time_ns - span.start_time_ns, 0) // 1_000_000
        v["state"] = TraceState.ERROR if span.status_code == "ERROR" else TraceState.OK


__all__ = ["PREVIEW_CHARS", "Usage", "add_opt", "apply_usage", "merge_update"]
