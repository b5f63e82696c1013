"""The MLflow trace artifact, ``traces.json`` (the mlflow client's fallback span path), and
``/api/3.0/mlflow/server-info``.

The mlflow client uploads a finished trace's spans as ``traces.json`` when a server does not take
OTLP spans (``GET /version`` failed or is below 3.4) or does not say it keeps them
(``mlflow.trace.spansLocation``). tracelake keeps no file: ``PUT`` parses the body into spans and
writes them through the same writer as OTLP ingest, so they are searchable like any other spans;
``GET`` rebuilds the file from the store.

The body is ``mlflow.entities.TraceData.to_dict()``::

    {"spans": [{"trace_id": "<base64 16 bytes>", "span_id": "<base64 8 bytes>",
                "parent_span_id": "<base64>" | null, "name": "...",
                "start_time_unix_nano": 1795608475165212557, "end_time_unix_nano": ...,
                "events": [{"name": "...", "time_unix_nano": ..., "attributes": {"k": <value>}}],
                "status": {"code": "STATUS_CODE_OK", "message": ""},
                "attributes": {"mlflow.spanType": "\\"LLM\\"", "mlflow.spanInputs": "{\\"a\\": 1}", ...},
                "links": []}]}

Span attribute values are JSON-encoded strings; event attribute values are plain values.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tracelake.entities import Span, SpanEvent, SpanStatus
from tracelake.entities.trace import TRACE_ID_PREFIX, Trace
from tracelake.errors import InvalidRequest, NotFound
from tracelake.ingest.conventions import TraceFacts, normalise_span
from tracelake.server.requests import read_body
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import api_routes, ctx
from tracelake.server.routes.otlp import prepare_batches
from tracelake.server.routes.traces import _normalize_trace_id
from tracelake.store.base import SpanBatch, TraceUpdate

ATTR_REQUEST_ID = "mlflow.traceRequestId"
ATTR_SPAN_TYPE = "mlflow.spanType"
ATTR_INPUTS = "mlflow.spanInputs"
ATTR_OUTPUTS = "mlflow.spanOutputs"
ATTR_TOKEN_USAGE = "mlflow.chat.tokenUsage"

_STATUS_FROM_MLFLOW = {
    "STATUS_CODE_OK": SpanStatus.OK, "OK": SpanStatus.OK,
    "STATUS_CODE_ERROR": SpanStatus.ERROR, "ERROR": SpanStatus.ERROR,
    "STATUS_CODE_UNSET": SpanStatus.UNSET, "UNSET": SpanStatus.UNSET,
}
_STATUS_TO_MLFLOW = {SpanStatus.OK: "STATUS_CODE_OK", SpanStatus.ERROR: "STATUS_CODE_ERROR",
                     SpanStatus.UNSET: "STATUS_CODE_UNSET"}


# -- traces.json → spans -----------------------------------------------------------------------

def _hex_id(value: Any, size: int, field: str, where: str) -> str:
    """An id as mlflow writes it (base64 of the raw bytes; 3.5.0 wrote hex) → lowercase hex."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}: '{field}' must be a non-empty string")
    text = value[len(TRACE_ID_PREFIX):] if value.startswith(TRACE_ID_PREFIX) else value
    if len(text) == size * 2:
        try:
            bytes.fromhex(text)
            return text.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != size or raw == bytes(size):
        raise InvalidRequest(f"{where}: '{field}' {value!r} is not a base64 (or hex) id of {size} bytes")
    return raw.hex()


def _decode_attribute(value: Any) -> Any:
    """Span attributes in traces.json are JSON text; anything that is not is kept as sent."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _json_text(value: Any) -> str:
    """Inputs/outputs as JSON text: already-encoded text is kept byte for byte."""
    if isinstance(value, str):
        try:
            orjson.loads(value)
            return value
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps(value).decode()


def _opt_ns(value: Any, field: str, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{where}: '{field}' must be an integer of nanoseconds, got {value!r}") from None


def _ns(value: Any, field: str, where: str) -> int:
    found = _opt_ns(value, field, where)
    if found is None:
        raise InvalidRequest(f"{where}: '{field}' is required")
    return found


def span_from_dict(data: Any, where: str) -> Span:
    """One ``mlflow.entities.Span.to_dict()`` entry → a ``Span`` (conventions not yet applied)."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where} must be an object")
    trace_id = _hex_id(data.get("trace_id"), 16, "trace_id", where)
    span_id = _hex_id(data.get("span_id"), 8, "span_id", where)
    parent = data.get("parent_span_id")
    parent_id = _hex_id(parent, 8, "parent_span_id", where) if parent else None
    name = data.get("name")
    if not isinstance(name, str):
        raise InvalidRequest(f"{where}: 'name' must be a string")
    start = _ns(data.get("start_time_unix_nano"), "start_time_unix_nano", where)
    end = _opt_ns(data.get("end_time_unix_nano"), "end_time_unix_nano", where)
    if end is not None and end < start:
        raise InvalidRequest(f"{where}: end_time_unix_nano {end} is before start_time_unix_nano {start}")
    status = data.get("status") or {}
    if not isinstance(status, dict):
        raise InvalidRequest(f"{where}: 'status' must be an object")
    status_code = _STATUS_FROM_MLFLOW.get(str(status.get("code") or "STATUS_CODE_UNSET"))
    if status_code is None:
        raise InvalidRequest(f"{where}: unknown status code {status.get('code')!r}")
    raw_attrs = data.get("attributes") or {}
    if not isinstance(raw_attrs, dict):
        raise InvalidRequest(f"{where}: 'attributes' must be an object")
    attributes = {str(k): _decode_attribute(v) for k, v in raw_attrs.items()
                  if k not in (ATTR_INPUTS, ATTR_OUTPUTS)}
    events = []
    for i, event in enumerate(data.get("events") or []):
        if not isinstance(event, dict) or not isinstance(event.get("attributes") or {}, dict):
            raise InvalidRequest(f"{where}.events[{i}] must be an object with an 'attributes' object")
        time_ns = _ns(event.get("time_unix_nano", event.get("timestamp")), "time_unix_nano", f"{where}.events[{i}]")
        events.append(SpanEvent(str(event.get("name") or ""), time_ns, dict(event.get("attributes") or {})))
    span = Span(trace_id, span_id, parent_id, name, start, end, status_code, str(status.get("message") or ""),
                attributes=attributes, events=events)
    # Inputs/outputs are JSON text already: keep them as sent rather than decode and re-encode.
    if raw_attrs.get(ATTR_INPUTS) is not None:
        span.inputs = _json_text(raw_attrs[ATTR_INPUTS])
    if raw_attrs.get(ATTR_OUTPUTS) is not None:
        span.outputs = _json_text(raw_attrs[ATTR_OUTPUTS])
    return span


def batch_from_traces_json(body: bytes, experiment_id: str, trace_id: str) -> SpanBatch:
    """Parse and normalise a ``traces.json`` upload for trace ``trace_id`` ("tr-" + hex)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"traces.json is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("spans"), list):
        raise InvalidRequest("traces.json must be an object with a 'spans' list")
    spans: list[Span] = []
    update: TraceUpdate | None = None
    for i, raw in enumerate(data["spans"]):
        span = span_from_dict(raw, f"spans[{i}]")
        if span.request_id != trace_id:
            raise InvalidRequest(f"spans[{i}] belongs to trace {span.request_id}, not {trace_id}")
        facts = normalise_span(span)
        if facts is not None:
            update = update or TraceUpdate(trace_id, experiment_id)
            _merge_facts(update, facts)
        spans.append(span)
    return SpanBatch(experiment_id=experiment_id, spans=spans, traces=[update] if update else [])


def _merge_facts(update: TraceUpdate, facts: TraceFacts) -> None:
    """As OTLP ingest does: the root span's facts win over those found on other spans."""
    if facts.from_root:
        update.tags.update(facts.tags)
        update.metadata.update(facts.metadata)
        update.client_request_id = facts.client_request_id or update.client_request_id
        return
    for key, value in facts.tags.items():
        update.tags.setdefault(key, value)
    for key, value in facts.metadata.items():
        update.metadata.setdefault(key, value)
    update.client_request_id = update.client_request_id or facts.client_request_id


# -- store → traces.json -----------------------------------------------------------------------

def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def span_to_dict(span: Span) -> dict[str, Any]:
    """A stored span in the ``mlflow.entities.Span.to_dict()`` shape (attribute values as JSON text)."""
    attributes = {k: _dumps(v) for k, v in span.attributes.items()}
    attributes[ATTR_REQUEST_ID] = _dumps(span.request_id)
    attributes[ATTR_SPAN_TYPE] = _dumps(span.span_type)
    if span.inputs is not None:
        attributes[ATTR_INPUTS] = _json_text(span.inputs)
    if span.outputs is not None:
        attributes[ATTR_OUTPUTS] = _json_text(span.outputs)
    if ATTR_TOKEN_USAGE not in attributes and (span.input_tokens is not None or span.output_tokens is not None):
        input_tokens, output_tokens = span.input_tokens or 0, span.output_tokens or 0
        attributes[ATTR_TOKEN_USAGE] = _dumps({
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": span.total_tokens if span.total_tokens is not None else input_tokens + output_tokens,
        })
    return {
        "trace_id": _b64(span.trace_id),
        "span_id": _b64(span.span_id),
        "parent_span_id": _b64(span.parent_span_id) if span.parent_span_id else None,
        "name": span.name,
        "start_time_unix_nano": span.start_time_ns,
        "end_time_unix_nano": span.end_time_ns,
        "events": [{"name": e.name, "time_unix_nano": e.time_ns, "attributes": e.attributes} for e in span.events],
        "status": {"code": _STATUS_TO_MLFLOW.get(span.status_code, "STATUS_CODE_UNSET"),
                   "message": span.status_message},
        "attributes": attributes,
        "links": [],
    }


# -- routes ------------------------------------------------------------------------------------

def _location(request: Request) -> tuple[str, str]:
    experiment_id = request.path_params["experiment_id"]
    if not experiment_id.isdigit():
        raise InvalidRequest(f"experiment id must be a string of digits, got {experiment_id!r}")
    return experiment_id, _normalize_trace_id(request.path_params["trace_id"])


async def put_trace_data(request: Request) -> JSONResponse:
    c = ctx(request)
    experiment_id, trace_id = _location(request)
    c.limiter.check_server()
    body = await read_body(request, c.settings.max_request_bytes)
    batch = await run_in_threadpool(batch_from_traces_json, body, experiment_id, trace_id)
    if batch.spans:
        prepared = await run_in_threadpool(prepare_batches, c, [batch])
        await asyncio.gather(*(asyncio.wrap_future(c.writer.submit(b)) for b in prepared))
    return JSONResponse({})


async def get_trace_data(request: Request) -> Response:
    c = ctx(request)
    experiment_id, trace_id = _location(request)
    trace: Trace = await run_in_threadpool(c.store.get_trace, trace_id)
    if trace.info.experiment_id != experiment_id:
        raise NotFound(f"Trace with ID '{trace_id}' not found in experiment {experiment_id}.")
    body = orjson.dumps({"spans": [span_to_dict(s) for s in trace.spans]})
    return Response(body, media_type="application/json")


async def server_info(request: Request) -> JSONResponse:
    """What the mlflow client asks before an artifact download (only multipart flags matter)."""
    return JSONResponse({
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
    })


_TRACES_JSON = "/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/{trace_id}/artifacts/traces.json"

routes = [
    *api_routes(_TRACES_JSON, put_trace_data, ["PUT"]),
    *api_routes(_TRACES_JSON, get_trace_data, ["GET"]),
    *api_routes("/3.0/mlflow/server-info", server_info, ["GET"]),
]
