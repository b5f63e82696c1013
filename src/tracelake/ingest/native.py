"""The tracelake SDK's native span batch, decoded into the same ``DecodedRequest`` as OTLP.

``POST /api/tracelake/v1/spans`` with ``Content-Type: application/vnd.tracelake.spans+json``
(optionally gzip'd): one JSON object ``{"version": 1, "resource": {...}, "spans": [row, ...]}``
where each row is an array of 16 fields (the full description is in docs/sdk.md, "Wire
format"). The SDK sends this instead of OTLP/JSON because it costs a sixth of the CPU to build.

Each row becomes the attribute set the SDK's OTLP exporters send (``mlflow.spanType``,
``mlflow.spanInputs``, ``mlflow.chat.tokenUsage``, ``tracelake.trace.*`` ...), then goes through
the same ``normalise_span`` as an OTLP span: a span stores the same whichever way it came.

Errors: another media type or an unknown ``version`` → ``UnsupportedMediaType`` (415; the SDK
then falls back to OTLP/JSON); a body or field of the wrong shape → ``InvalidRequest`` (400)
naming the field; an impossible span (zero ids, no start, end before start) → ``Unprocessable``
(422); too big once inflated → ``PayloadTooLarge`` (413).
"""
from __future__ import annotations

from typing import Any

import orjson

from tracelake.entities import Span, SpanEvent, SpanType
from tracelake.errors import InvalidRequest, UnsupportedMediaType
from tracelake.ingest.conventions import TraceFacts, normalise_span
from tracelake.ingest.otlp import STATUS_NAMES, ResourceSpans, media_type, read_body, unprocessable
from tracelake.ingest.pipeline import DecodedRequest, ExperimentBatch, experiment_target, merge_facts
from tracelake.store.base import TraceUpdate

CONTENT_TYPE = "application/vnd.tracelake.spans+json"
VERSION = 1
FIELDS = 16  # per span row; readers ignore extra trailing fields
_U64 = 1 << 64
_FIELD_NAMES = ("trace id (high 64 bits)", "trace id (low 64 bits)", "span id", "parent span id", "name",
                "span type", "start time", "end time", "status code", "status message", "inputs", "outputs",
                "attributes", "events", "token usage", "trace")
_dumps = orjson.dumps
_type_json: dict[str, str] = {}


class _BadField(Exception):
    """A field of the wrong type at a path; becomes InvalidRequest."""


class _Impossible(Exception):
    """A well-typed span that cannot exist; becomes Unprocessable."""


def decode_native_request(body: bytes, content_type: str | None, content_encoding: str | None, *,
                          max_bytes: int, default_experiment_id: str | None, header_experiment_id: str | None,
                          header_experiment_name: str | None = None) -> DecodedRequest:
    """Decode, validate and normalise one native batch (same contract as ``decode_request``)."""
    if media_type(content_type) != CONTENT_TYPE:
        raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}: send {CONTENT_TYPE}")
    resource = parse_native(read_body(body, content_encoding, max_bytes))
    result = DecodedRequest()
    if not resource.spans:
        return result
    experiment_id, experiment_name = experiment_target(resource, header_experiment_id, header_experiment_name,
                                             default_experiment_id)
    batch = ExperimentBatch(experiment_id, resource.spans, [], experiment_name)
    facts: dict[str, TraceFacts] = {}
    trace_ids: set[str] = set()
    for span in resource.spans:
        found = normalise_span(span)
        if found is not None:
            merge_facts(facts, span.trace_id, found)
        trace_ids.add(span.trace_id)
    batch.traces = [TraceUpdate("tr-" + trace_id, experiment_id, f.tags, f.metadata, f.client_request_id)
                    for trace_id, f in facts.items()]
    result.batches.append(batch)
    result.span_count = len(resource.spans)
    result.trace_count = len(trace_ids)
    return result


def parse_native(data: bytes) -> ResourceSpans:
    """The resource and spans of a native batch (attributes not yet normalised)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"invalid native span batch: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("invalid native span batch: expected a JSON object")
    version = doc.get("version")
    if type(version) is not int:
        raise InvalidRequest('invalid native span batch: "version" must be an integer')
    if version != VERSION:
        raise UnsupportedMediaType(f"native span batch version {version} is not supported: this server "
                                   f"reads version {VERSION} (or OTLP at /v1/traces)")
    resource = doc.get("resource")
    if resource is None:
        resource = {}
    elif not isinstance(resource, dict):
        raise InvalidRequest('invalid native span batch: "resource" must be an object')
    rows = doc.get("spans")
    if not isinstance(rows, list):
        raise InvalidRequest('invalid native span batch: "spans" must be an array')
    group = ResourceSpans(resource)
    append = group.spans.append
    hex_ids: dict[tuple[int, int], str] = {}  # spans of one trace share one id string
    for i, row in enumerate(rows):
        try:
            append(_span(row, hex_ids))
        except _BadField as exc:
            raise InvalidRequest(f"invalid native span batch: spans[{i}]{exc}") from None
        except _Impossible as exc:
            name = row[4] if isinstance(row[4], str) else ""
            raise unprocessable(f"spans[{i}]", name, f"{row[2]:016x}", str(exc)) from None
    return group


def _u64(row: list[Any], i: int) -> int:
    value = row[i]
    if type(value) is not int or not 0 <= value < _U64:
        raise _BadField(f"[{i}] ({_FIELD_NAMES[i]}): expected an unsigned 64-bit integer, got {value!r}")
    return value


def _typed(row: list[Any], i: int, kind: type, nullable: bool) -> Any:
    value = row[i]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        expected = {str: "a string", int: "an integer", dict: "an object", list: "an array"}[kind]
        raise _BadField(f"[{i}] ({_FIELD_NAMES[i]}): expected {expected}{' or null' if nullable else ''}, "
                        f"got {type(value).__name__}")
    return value


def _span(row: Any, hex_ids: dict[tuple[int, int], str]) -> Span:
    if not isinstance(row, list) or len(row) < FIELDS:
        raise _BadField(f": expected an array of {FIELDS} fields")
    high, low, span_id, parent_id = _u64(row, 0), _u64(row, 1), _u64(row, 2), _u64(row, 3)
    name = _typed(row, 4, str, False)
    span_type = _typed(row, 5, str, False) or SpanType.UNKNOWN
    start, end, status = _typed(row, 6, int, False), _typed(row, 7, int, False), _typed(row, 8, int, False)
    message = _typed(row, 9, str, False)
    inputs, outputs = _typed(row, 10, str, True), _typed(row, 11, str, True)
    user_attributes = _typed(row, 12, dict, True)
    events = _events(_typed(row, 13, list, True))
    usage = _usage(_typed(row, 14, list, True), "[14] (token usage)")
    trace = _typed(row, 15, dict, True)
    if not (high or low):
        raise _Impossible("the trace id is zero")
    if not span_id:
        raise _Impossible("the span id is zero")
    if start <= 0:
        raise _Impossible("the start time is missing")
    if end and end < start:
        raise _Impossible(f"end time {end} is before start time {start}")
    if not 0 <= status < len(STATUS_NAMES):
        raise _BadField(f"[8] (status code): expected 0, 1 or 2, got {status}")
    trace_id = hex_ids.get((high, low))
    if trace_id is None:
        trace_id = hex_ids[(high, low)] = f"{high:016x}{low:016x}"
    # The attribute set the SDK's OTLP exporters send (tracelake.tracing.wire.span_attributes).
    attrs: dict[str, Any] = dict(user_attributes) if user_attributes else {}
    attrs["mlflow.traceRequestId"] = f'"tr-{trace_id}"'
    type_json = _type_json.get(span_type)
    if type_json is None:
        type_json = _dumps(span_type).decode()
        if len(_type_json) < 1000:  # a few types in practice; bounded against odd clients
            _type_json[span_type] = type_json
    attrs["mlflow.spanType"] = type_json
    if inputs is not None:
        attrs["mlflow.spanInputs"] = inputs
    if outputs is not None:
        attrs["mlflow.spanOutputs"] = outputs
    if usage is not None:
        attrs["mlflow.chat.tokenUsage"] = usage
    if trace is not None:
        _trace_attributes(trace, attrs)
    return Span(trace_id, f"{span_id:016x}", f"{parent_id:016x}" if parent_id else None, name, start,
                end or None, STATUS_NAMES[status], message, SpanType.UNKNOWN, None, None, attrs, events)


def _events(rows: list[Any] | None) -> list[SpanEvent]:
    if not rows:
        return []
    events = []
    for j, ev in enumerate(rows):
        if not isinstance(ev, list) or len(ev) < 3 or not isinstance(ev[0], str) \
                or type(ev[1]) is not int or not (ev[2] is None or isinstance(ev[2], dict)):
            raise _BadField(f"[13][{j}] (event): expected [name, time ns, attributes or null]")
        events.append(SpanEvent(ev[0], ev[1], ev[2] or {}))
    return events


def _usage(value: list[Any] | None, where: str) -> str | None:
    """``[input, output, total]`` → the JSON text MLflow puts in its token usage attributes."""
    if value is None:
        return None
    if len(value) != 3 or any(type(v) is not int for v in value):
        raise _BadField(f"{where}: expected [input tokens, output tokens, total tokens]")
    return _dumps({"input_tokens": value[0], "output_tokens": value[1], "total_tokens": value[2]}).decode()


def _trace_attributes(trace: dict[str, Any], attrs: dict[str, Any]) -> None:
    for key, attr in (("tags", "tracelake.trace.tags"), ("metadata", "tracelake.trace.metadata")):
        value = trace.get(key)
        if value is not None:
            if not isinstance(value, dict):
                raise _BadField(f"[15].{key}: expected an object")
            attrs[attr] = _dumps(value).decode()
    request_id = trace.get("client_request_id")
    if request_id is not None:
        if not isinstance(request_id, str):
            raise _BadField("[15].client_request_id: expected a string")
        attrs["tracelake.trace.client_request_id"] = request_id
    usage = trace.get("token_usage")
    if usage is not None:
        if not isinstance(usage, list):
            raise _BadField("[15].token_usage: expected [input tokens, output tokens, total tokens]")
        attrs["mlflow.trace.tokenUsage"] = _usage(usage, "[15].token_usage")
