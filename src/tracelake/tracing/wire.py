"""A finished span as wire data: MLflow-convention attributes, the OTLP/JSON document, and the
native batch of the tracelake server.

Runs on the export thread. ``span_attributes`` is the single source of the attribute set (the
OTLP encoders use it); values are OTLP primitives, tuples of them, or JSON text. The native
format (``encode_native``, documented in docs/sdk.md) sends the span's fields as they are: one
``orjson.dumps`` of a list of tuples, about 6x cheaper than building the OTLP/JSON objects.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Sequence

import orjson

from tracelake.entities.span import SpanEvent
from tracelake.tracing.span import Span, TraceData

SCOPE_NAME = "tracelake"
SDK_VERSION = "0.1.0"

# MLflow's span attribute keys (values are JSON text, as MLflow writes them).
ATTR_REQUEST_ID = "mlflow.traceRequestId"
ATTR_SPAN_TYPE = "mlflow.spanType"
ATTR_INPUTS = "mlflow.spanInputs"
ATTR_OUTPUTS = "mlflow.spanOutputs"
ATTR_TOKEN_USAGE = "mlflow.chat.tokenUsage"
ATTR_TRACE_TOKEN_USAGE = "mlflow.trace.tokenUsage"
# Trace-level data, on the root span.
ATTR_TRACE_TAGS = "tracelake.trace.tags"
ATTR_TRACE_METADATA = "tracelake.trace.metadata"
ATTR_CLIENT_REQUEST_ID = "tracelake.trace.client_request_id"

_dumps = orjson.dumps
_type_json: dict[str, str] = {}


def _span_type_json(span_type: str) -> str:
    text = _type_json.get(span_type)
    if text is None:
        text = _type_json[span_type] = _dumps(span_type).decode()
    return text


def _usage_json(i: int, o: int, t: int) -> str:
    return _dumps({"input_tokens": i, "output_tokens": o, "total_tokens": t}).decode()


def span_attributes(span: Span) -> dict[str, Any]:
    """All attributes of ``span`` as they go on the wire (user attributes first, ours win)."""
    attrs: dict[str, Any] = dict(span._attributes) if span._attributes else {}
    attrs[ATTR_REQUEST_ID] = f'"tr-{span._trace_id:032x}"'
    attrs[ATTR_SPAN_TYPE] = _span_type_json(span.span_type)
    if span._inputs is not None:
        attrs[ATTR_INPUTS] = span._inputs
    if span._outputs is not None:
        attrs[ATTR_OUTPUTS] = span._outputs
    if span._usage is not None:
        attrs[ATTR_TOKEN_USAGE] = _usage_json(*span._usage)
    tr = span._trace_data  # set on local roots only
    if tr is not None:
        if tr.tags:
            attrs[ATTR_TRACE_TAGS] = _dumps(tr.tags).decode()
        if tr.metadata:
            attrs[ATTR_TRACE_METADATA] = _dumps(tr.metadata).decode()
        if tr.client_request_id is not None:
            attrs[ATTR_CLIENT_REQUEST_ID] = tr.client_request_id
        if tr.usage is not None:
            attrs[ATTR_TRACE_TOKEN_USAGE] = _usage_json(*tr.usage)
    return attrs


def default_service_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name or "unknown_service:python"


def build_resource(service_name: str | None = None, experiment_id: str | None = None,
                   experiment_name: str | None = None) -> dict[str, Any]:
    """The OTel resource attributes of this process."""
    resource: dict[str, Any] = {
        "service.name": service_name or default_service_name(),
        "telemetry.sdk.name": "tracelake",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": SDK_VERSION,
    }
    if experiment_id:
        resource["tracelake.experiment_id"] = experiment_id
    if experiment_name:
        resource["tracelake.experiment_name"] = experiment_name
    return resource


# -- OTLP/JSON ---------------------------------------------------------------------------------
def any_value(value: Any) -> dict[str, Any]:
    t = type(value)
    if t is str:
        return {"stringValue": value}
    if t is bool:
        return {"boolValue": value}
    if t is int:
        return {"intValue": str(value)}
    if t is float:
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"doubleValue": "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}
    if t is tuple or t is list:
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def key_values(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


_type_entries: dict[str, dict[str, Any]] = {}
_STATUS_ENTRIES = ({"code": 0, "message": ""}, {"code": 1, "message": ""}, {"code": 2, "message": ""})


def _str_entry(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def span_json(span: Span) -> dict[str, Any]:
    """One span as an OTLP/JSON ``Span`` object.

    The hot loop of the exporter thread: it builds the same attributes as ``span_attributes``
    but straight into OTLP entries (shared entries for span types and plain statuses).
    """
    trace_hex = f"{span._trace_id:032x}"
    entry = _type_entries.get(span.span_type)
    if entry is None:
        entry = _type_entries[span.span_type] = _str_entry(ATTR_SPAN_TYPE, _span_type_json(span.span_type))
    attrs = [{"key": ATTR_REQUEST_ID, "value": {"stringValue": f'"tr-{trace_hex}"'}}, entry]
    if span._attributes:
        attrs[:0] = key_values(span._attributes)
    if span._inputs is not None:
        attrs.append({"key": ATTR_INPUTS, "value": {"stringValue": span._inputs}})
    if span._outputs is not None:
        attrs.append({"key": ATTR_OUTPUTS, "value": {"stringValue": span._outputs}})
    if span._usage is not None:
        attrs.append(_str_entry(ATTR_TOKEN_USAGE, _usage_json(*span._usage)))
    if span._trace_data is not None:
        attrs.extend(key_values({k: v for k, v in span_attributes(span).items() if k.startswith(_TRACE_KEYS)}))
    doc: dict[str, Any] = {
        "traceId": trace_hex,
        "spanId": f"{span._span_id:016x}",
        "name": span.name,
        "kind": 1,
        "startTimeUnixNano": str(span.start_time_ns),
        "endTimeUnixNano": str(span.end_time_ns),
        "attributes": attrs,
        "status": _STATUS_ENTRIES[span._status] if not span._status_message
        else {"code": span._status, "message": span._status_message},
    }
    if span._parent_id:
        doc["parentSpanId"] = f"{span._parent_id:016x}"
    if span._events:
        doc["events"] = [{"timeUnixNano": str(e.time_ns), "name": e.name, "attributes": key_values(e.attributes)}
                         for e in span._events]
    return doc


_TRACE_KEYS = ("tracelake.trace.", ATTR_TRACE_TOKEN_USAGE)


def encode_otlp_json(spans: Sequence[Span], resource: dict[str, Any]) -> bytes:
    """An OTLP ``ExportTraceServiceRequest`` in JSON for one resource and the tracelake scope."""
    return _dumps({"resourceSpans": [{
        "resource": {"attributes": key_values(resource)},
        "scopeSpans": [{"scope": {"name": SCOPE_NAME, "version": SDK_VERSION},
                        "spans": [span_json(s) for s in spans]}],
    }]})


# -- native batch (tracelake server) -----------------------------------------------------------
NATIVE_CONTENT_TYPE = "application/vnd.tracelake.spans+json"
NATIVE_VERSION = 1
# Events and trace-level data stay objects in a row (see ``span_row``); orjson hands them to
# ``_native_default`` (dataclasses too, with this option) while encoding.
_NATIVE_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS

Row = tuple  # one span's 16 native fields; see ``span_row``


def _trace_fields(tr: Any) -> dict[str, Any] | None:
    """Trace-level data carried by a root span, or None."""
    fields: dict[str, Any] = {}
    if tr.tags:
        fields["tags"] = tr.tags
    if tr.metadata:
        fields["metadata"] = tr.metadata
    if tr.client_request_id is not None:
        fields["client_request_id"] = tr.client_request_id
    if tr.usage is not None:
        fields["token_usage"] = tr.usage
    return fields or None


def _native_default(value: Any) -> Any:
    if value.__class__ is SpanEvent:
        return (value.name, value.time_ns, value.attributes)
    if value.__class__ is TraceData:
        return _trace_fields(value)
    raise TypeError(f"{type(value).__name__} is not part of a native span row")


def span_row(span: Span) -> Row:
    """The native row of a finished span: its 16 fields, in order.

    Trace id high 64 bits, low 64 bits, span id, parent span id (0: none), name, span type,
    start ns, end ns, status code (0 unset, 1 ok, 2 error), status message, inputs (JSON text or
    None), outputs (idem), attributes (dict or None), events (None or a list of ``SpanEvent``),
    token usage (None or ``(input, output, total)``), trace-level data (None or the root's
    ``TraceData``). Events and trace data are converted while encoding. For a span without them
    (and without attributes) the row holds only strings, ints and None: the garbage collector
    stops tracking it, so a long export queue costs collections nothing.

    ``BatchSpanProcessor.on_end`` builds the same tuple inline (it is the hot path).
    """
    return (span._trace_hi, span._trace_lo, span._span_id, span._parent_id, span.name, span.span_type,
            span.start_time_ns, span.end_time_ns, span._status, span._status_message, span._inputs,
            span._outputs, span._attributes, span._events, span._usage, span._trace_data)


def row_span(row: Row) -> Span:
    """A ``Span`` carrying a row's fields (for the encoders that take spans)."""
    span = Span.__new__(Span)
    (span._trace_hi, span._trace_lo, span._span_id, span._parent_id, span.name, span.span_type, span.start_time_ns, span.end_time_ns,
     span._status, span._status_message, span._inputs, span._outputs, span._attributes, span._events,
     span._usage, span._trace_data) = row[:16]
    span._sampled = True
    span._root = span._token = None
    return span


def native_rows(rows: Sequence[Row]) -> bytes:
    """The rows as one JSON array (``b"[[...],[...]]"``)."""
    return _dumps(rows, default=_native_default, option=_NATIVE_OPTIONS)


def native_body(parts: Sequence[bytes], resource: dict[str, Any]) -> bytes:
    """A native batch from ``native_rows`` parts (each non-empty), without re-encoding them."""
    head = _dumps({"version": NATIVE_VERSION, "resource": resource, "spans": []})
    return b"".join((head[:-2], b",".join(part[1:-1] for part in parts), b"]}"))


def encode_native(spans: Sequence[Span], resource: dict[str, Any]) -> bytes:
    """A native batch: ``{"version": 1, "resource": {...}, "spans": [[16 fields], ...]}``.

    Span fields, in order: trace id high 64 bits, low 64 bits, span id, parent span id (0: none),
    name, span type, start ns, end ns, status code (0 unset, 1 ok, 2 error), status message,
    inputs (JSON text or null), outputs (idem), attributes (object or null), events (null or
    ``[[name, time ns, attributes], ...]``), token usage (null or ``[input, output, total]``),
    trace-level data on a root span (null or an object with ``tags``, ``metadata``,
    ``client_request_id``, ``token_usage``).
    """
    return _dumps({"version": NATIVE_VERSION, "resource": resource, "spans": [span_row(s) for s in spans]},
                  default=_native_default, option=_NATIVE_OPTIONS)
