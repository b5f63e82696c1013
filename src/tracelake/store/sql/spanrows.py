"""Span <-> ``spans`` row conversion, and the offloaded-content blob format.

Row content (inputs, outputs, attributes, events) is JSON text. When a span's content is
larger than the offload threshold it is written to artifact storage as one JSON object
``{"inputs": str|null, "outputs": str|null, "attributes": str|null, "events": str|null}``
(each value the JSON text the row would have held, so reading it back re-encodes nothing),
and the row keeps only the index columns plus ``content_uri``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tracelake.entities import Span, SpanEvent
from tracelake.entities.span import SpanStatus
from tracelake.errors import InvalidRequest
from tracelake.store.artifacts import join_uri
from tracelake.store.sql.core import norm_trace_id
from tracelake.store.sql.schema import spans

_STATUSES = {SpanStatus.UNSET, SpanStatus.OK, SpanStatus.ERROR}
_CONTENT = ("inputs", "outputs", "attributes", "events")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def text_bytes(text: str | None) -> int:
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# A row is a list in the ``spans`` table's column order (what the bulk insert takes as is);
# these are the positions the store fills in or moves content out of.
SPAN_COLUMNS = ("trace_key", "span_id", "trace_id", "parent_span_id", "name", "span_type", "kind",
                "start_time_ns", "end_time_ns", "status_code", "status_message", "inputs", "outputs",
                "attributes", "events", "model", "input_tokens", "output_tokens", "total_tokens", "cost",
                "content_uri", "seq")
assert SPAN_COLUMNS == tuple(c.name for c in spans.columns), "spanrows.SPAN_COLUMNS must follow schema.spans"
ROW_TRACE_KEY = SPAN_COLUMNS.index("trace_key")
ROW_CONTENT_URI = SPAN_COLUMNS.index("content_uri")
ROW_SEQ = SPAN_COLUMNS.index("seq")
_ROW_CONTENT = tuple(SPAN_COLUMNS.index(key) for key in _CONTENT)


@dataclass(slots=True)
class SpanRecord:
    span: Span | RowSpan  # the validated span (its values are read for trace state and usage)
    trace_id: str  # normalised ("tr-" + 32 hex)
    row: list[Any]  # the ``spans`` row to insert, in SPAN_COLUMNS order (content moved out when offloaded)
    size: int  # bytes of content
    blob: bytes | None = None  # offloaded content, to write before the row is committed

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (to a writer process) as its row: the row holds every span value the writer
        reads, so the ``Span`` with its attribute dicts does not travel (dumps 5.7 -> ~1 µs/span).
        An offloaded span's row has no content: its previews go along."""
        previews = None
        if self.blob is not None:
            span = self.span
            previews = (span.inputs[:PREVIEW_CHARS] if span.inputs is not None else None,
                        span.outputs[:PREVIEW_CHARS] if span.outputs is not None else None)
        return (_record_from_row, (self.trace_id, self.row, self.size, self.blob, previews))


PREVIEW_CHARS = 1000  # characters of the root span's inputs/outputs kept as the trace's previews


class RowSpan:
    """The span values the writer reads (trace state, usage), taken from a row: what a
    ``SpanRecord`` carries in place of its ``Span`` once it has crossed to a writer process."""

    __slots__ = ("span_id", "parent_span_id", "name", "start_time_ns", "end_time_ns", "status_code", "inputs",
                 "outputs", "input_tokens", "output_tokens", "total_tokens", "cost")

    def __init__(self, row: list[Any], previews: tuple[str | None, str | None] | None) -> None:
        (_, self.span_id, _, self.parent_span_id, self.name, _, _, self.start_time_ns, self.end_time_ns,
         self.status_code, _, self.inputs, self.outputs, _, _, _, self.input_tokens, self.output_tokens,
         self.total_tokens, self.cost, _, _) = row
        if previews is not None:
            self.inputs, self.outputs = previews


def _record_from_row(trace_id: str, row: list[Any], size: int, blob: bytes | None,
                     previews: tuple[str | None, str | None] | None) -> SpanRecord:
    return SpanRecord(RowSpan(row, previews), trace_id, row, size, blob)


def span_record(span: Span, offload_bytes: int, trace_id: str | None = None) -> SpanRecord:
    """Validate a span and build its row. Raises ``InvalidRequest`` for malformed ids.

    ``trace_id`` is the span's normalised trace id when the caller already has it; the row's
    ``trace_key`` and ``seq`` are filled in by the writing transaction."""
    span_id = span.span_id
    if not span_id or len(span_id) > 16:
        raise InvalidRequest(f"Invalid span id {span_id!r}: expected up to 16 hex digits")
    parent = span.parent_span_id or None
    if parent is not None and len(parent) > 16:
        raise InvalidRequest(f"Invalid parent span id {parent!r}: expected up to 16 hex digits")
    if span.status_code not in _STATUSES:
        raise InvalidRequest(f"Invalid span status {span.status_code!r}: expected UNSET, OK or ERROR")
    if not isinstance(span.start_time_ns, int):
        raise InvalidRequest(f"Span {span_id!r} has no integer start_time_ns")
    attributes = _dumps(span.attributes) if span.attributes else None
    events = (_dumps([{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in span.events])
              if span.events else None)
    inputs, outputs = span.inputs, span.outputs
    size = text_bytes(inputs) + text_bytes(outputs) + text_bytes(attributes) + text_bytes(events)
    tid = trace_id or norm_trace_id(span.trace_id)
    name = span.name or ""
    span_type = span.span_type or "UNKNOWN"
    kind = span.kind or "INTERNAL"
    model = span.model
    row = [0, span_id, tid, parent, name if len(name) <= 500 else name[:500],
           span_type if len(span_type) <= 64 else span_type[:64], kind if len(kind) <= 16 else kind[:16],
           span.start_time_ns, span.end_time_ns, span.status_code, span.status_message or "",
           inputs, outputs, attributes, events, model[:250] if model else None,
           span.input_tokens, span.output_tokens, span.total_tokens, span.cost, None, 0]
    record = SpanRecord(span, tid, row, size)
    if size > offload_bytes:
        record.blob = orjson.dumps({key: row[i] for key, i in zip(_CONTENT, _ROW_CONTENT)})
        for i in _ROW_CONTENT:
            row[i] = None
    return record


def content_uri(artifact_location: str, trace_id: str, span_id: str) -> str:
    return join_uri(trace_prefix(artifact_location, trace_id), "spans", f"{span_id}.json")


def trace_prefix(artifact_location: str, trace_id: str) -> str:
    return join_uri(artifact_location, "traces", trace_id)


def span_from_row(row: Any, content: dict[str, str | None] | None = None, trace_id: str | None = None) -> Span:
    """A ``Span`` from a ``spans`` row; ``content`` is the offloaded blob, decoded.

    ``trace_id`` ("tr-" + hex) is for rows selected without their ``trace_id`` column."""
    if content is None:
        inputs, outputs, attributes, events = row.inputs, row.outputs, row.attributes, row.events
    else:
        inputs, outputs, attributes, events = (content.get(key) for key in _CONTENT)
    return Span(
        trace_id=(trace_id or row.trace_id).removeprefix("tr-"),
        span_id=row.span_id,
        parent_span_id=row.parent_span_id,
        name=row.name,
        start_time_ns=row.start_time_ns,
        end_time_ns=row.end_time_ns,
        status_code=row.status_code,
        status_message=row.status_message,
        span_type=row.span_type,
        inputs=inputs,
        outputs=outputs,
        attributes=orjson.loads(attributes) if attributes else {},
        events=[SpanEvent(e["name"], e["time_ns"], e.get("attributes") or {}) for e in orjson.loads(events)]
        if events else [],
        kind=row.kind,
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        total_tokens=row.total_tokens,
        cost=row.cost,
    )
