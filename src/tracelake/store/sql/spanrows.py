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

_STATUSES = {SpanStatus.UNSET, SpanStatus.OK, SpanStatus.ERROR}
_CONTENT = ("inputs", "outputs", "attributes", "events")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def text_bytes(text: str | None) -> int:
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class SpanRecord:
    row: dict[str, Any]  # the ``spans`` row to insert (content moved out when offloaded)
    size: int  # bytes of content
    inputs: str | None  # kept for previews even when the row's copy is offloaded
    outputs: str | None
    blob: bytes | None = None  # offloaded content, to write before the row is committed


def span_record(span: Span, offload_bytes: int, trace_id: str | None = None) -> SpanRecord:
    """Validate a span and build its row. Raises ``InvalidRequest`` for malformed ids.

    ``trace_id`` is the span's normalised trace id when the caller already has it."""
    if not span.span_id or len(span.span_id) > 16:
        raise InvalidRequest(f"Invalid span id {span.span_id!r}: expected up to 16 hex digits")
    parent = span.parent_span_id or None
    if parent is not None and len(parent) > 16:
        raise InvalidRequest(f"Invalid parent span id {parent!r}: expected up to 16 hex digits")
    if span.status_code not in _STATUSES:
        raise InvalidRequest(f"Invalid span status {span.status_code!r}: expected UNSET, OK or ERROR")
    if not isinstance(span.start_time_ns, int):
        raise InvalidRequest(f"Span {span.span_id!r} has no integer start_time_ns")
    attributes = _dumps(span.attributes) if span.attributes else None
    events = (_dumps([{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in span.events])
              if span.events else None)
    size = text_bytes(span.inputs) + text_bytes(span.outputs) + text_bytes(attributes) + text_bytes(events)
    row = {
        "trace_id": trace_id or norm_trace_id(span.trace_id),
        "span_id": span.span_id,
        "parent_span_id": parent,
        "name": (span.name or "")[:500],
        "span_type": (span.span_type or "UNKNOWN")[:64],
        "kind": (span.kind or "INTERNAL")[:16],
        "start_time_ns": span.start_time_ns,
        "end_time_ns": span.end_time_ns,
        "status_code": span.status_code,
        "status_message": span.status_message or "",
        "inputs": span.inputs,
        "outputs": span.outputs,
        "attributes": attributes,
        "events": events,
        "model": span.model[:250] if span.model else None,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "total_tokens": span.total_tokens,
        "cost": span.cost,
        "content_uri": None,
        "seq": 0,  # set to the writing transaction's seq
    }
    record = SpanRecord(row, size, span.inputs, span.outputs)
    if size > offload_bytes:
        record.blob = orjson.dumps({key: row[key] for key in _CONTENT})
        for key in _CONTENT:
            row[key] = None
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
