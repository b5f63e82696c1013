"""Traces, MLflow REST API v3 paths (also answered under /2.0/): start, get, search, count,
tags, delete. Spans arrive through OTLP (``/v1/traces``)."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tracelake.auth.context import readable_experiment_ids
from tracelake.entities import TraceInfo
from tracelake.entities.trace import TRACE_ID_PREFIX, TraceState
from tracelake.errors import InvalidRequest
from tracelake.server.mlflow_json import (duration_to_ms, timestamp_to_ms, trace_info_json, trace_json,
                                         without_gc)
from tracelake.server.requests import opt_int, opt_str, params, require_str, str_list
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import api_routes, ctx
from tracelake.store.sql.store import SqlStore

MAX_SEARCH_RESULTS = 50_000
_STATES = {TraceState.OK, TraceState.ERROR, TraceState.IN_PROGRESS}


def _experiment_ids(data: dict[str, Any]) -> list[str]:
    ids = str_list(data, "experiment_ids")
    locations = data.get("locations") or []
    if not isinstance(locations, list):
        raise InvalidRequest("'locations' must be a list")
    for loc in locations:
        exp = (loc or {}).get("mlflow_experiment") if isinstance(loc, dict) else None
        if not isinstance(exp, dict) or not exp.get("experiment_id"):
            raise InvalidRequest("each location needs mlflow_experiment.experiment_id")
        ids.append(str(exp["experiment_id"]))
    if not ids:
        raise InvalidRequest("give at least one experiment: 'locations' or 'experiment_ids'")
    for experiment_id in ids:
        if not experiment_id.isdigit():
            raise InvalidRequest(f"experiment id must be a string of digits, got {experiment_id!r}")
    return ids


def _sql_store(request: Request) -> SqlStore:
    """Traces are read as rows and turned into JSON directly (see ``mlflow_json.trace_json``)."""
    store = ctx(request).store
    if not isinstance(store, SqlStore):
        raise InvalidRequest("reading traces needs the SQL store")
    return store


def _normalize_trace_id(raw: str) -> str:
    hex_part = raw[len(TRACE_ID_PREFIX):] if raw.startswith(TRACE_ID_PREFIX) else raw
    if len(hex_part) != 32 or any(c not in "0123456789abcdef" for c in hex_part.lower()):
        raise InvalidRequest(f"invalid trace id {raw!r}: expected 'tr-' followed by 32 hex characters")
    return TRACE_ID_PREFIX + hex_part.lower()


async def start_trace(request: Request) -> JSONResponse:
    """StartTraceV3: the mlflow client registers a trace's info (spans come separately)."""
    data = await params(request)
    trace = data.get("trace") or {}
    info_json = trace.get("trace_info") if isinstance(trace, dict) else None
    if not isinstance(info_json, dict):
        raise InvalidRequest("body needs trace.trace_info")
    location = info_json.get("trace_location") or {}
    experiment_id = str(((location.get("mlflow_experiment") or {}).get("experiment_id")) or "")
    if not experiment_id.isdigit():
        raise InvalidRequest("trace_info.trace_location.mlflow_experiment.experiment_id is required")
    state = info_json.get("state") or TraceState.IN_PROGRESS
    if state == "STATE_UNSPECIFIED":
        state = TraceState.IN_PROGRESS
    if state not in _STATES:
        raise InvalidRequest(f"invalid state {state!r}; expected one of {sorted(_STATES)}")
    metadata = info_json.get("trace_metadata") or {}
    tags = info_json.get("tags") or {}
    if not isinstance(metadata, dict) or not isinstance(tags, dict):
        raise InvalidRequest("trace_metadata and tags must be objects of strings")
    info = TraceInfo(
        trace_id=_normalize_trace_id(require_str(info_json, "trace_id")),
        experiment_id=experiment_id,
        request_time=timestamp_to_ms(info_json.get("request_time")),
        state=state,
        execution_duration=duration_to_ms(info_json.get("execution_duration")),
        client_request_id=opt_str(info_json, "client_request_id"),
        request_preview=opt_str(info_json, "request_preview"),
        response_preview=opt_str(info_json, "response_preview"),
        trace_metadata={str(k): str(v) for k, v in metadata.items()},
        tags={str(k): str(v) for k, v in tags.items()},
    )
    c = ctx(request)
    await run_in_threadpool(c.experiments.check_active, c.store, experiment_id)
    stored = await run_in_threadpool(c.store.start_trace, info)
    return JSONResponse({"trace": {"trace_info": trace_info_json(stored)}})


async def get_trace_info(request: Request) -> JSONResponse:
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    info = await run_in_threadpool(ctx(request).store.get_trace_info, trace_id)
    return JSONResponse({"trace": {"trace_info": trace_info_json(info)}})


async def get_trace(request: Request) -> Response:
    """The whole trace: info + spans (paged with max_spans / span_page_token for huge traces)."""
    data = await params(request)
    trace_id = _normalize_trace_id(require_str(data, "trace_id"))
    max_spans = opt_int(data, "max_spans", None, minimum=1)
    span_page_token = opt_str(data, "span_page_token")
    store = _sql_store(request)

    def answer() -> bytes:
        found = store.read_trace(trace_id, max_spans, span_page_token)
        out: dict[str, Any] = {"trace": trace_json(found)}
        if found.next_span_page_token:
            out["next_span_page_token"] = found.next_span_page_token
        return orjson.dumps(out)

    # Rows to bytes off the event loop: a 10,000-span trace is tens of ms of Python.
    return Response(await run_in_threadpool(without_gc, answer), media_type="application/json")


async def batch_get_traces(request: Request) -> Response:
    data = await params(request)
    ids = [_normalize_trace_id(t) for t in str_list(data, "trace_ids")]
    store = _sql_store(request)

    def answer() -> bytes:
        return orjson.dumps({"traces": [trace_json(store.read_trace(trace_id)) for trace_id in ids]})

    return Response(await run_in_threadpool(without_gc, answer), media_type="application/json")


async def search_traces(request: Request) -> JSONResponse:
    data = await params(request)
    # Only experiments the caller may read (all of them with auth off); none readable: no traces.
    experiment_ids = await readable_experiment_ids(request, _experiment_ids(data))
    if not experiment_ids:
        return JSONResponse({"traces": []})
    page = await run_in_threadpool(
        ctx(request).store.search_traces, experiment_ids, opt_str(data, "filter"),
        str_list(data, "order_by") or None,
        opt_int(data, "max_results", 100, minimum=1, maximum=MAX_SEARCH_RESULTS), opt_str(data, "page_token"),
    )
    out: dict[str, Any] = {"traces": [trace_info_json(t) for t in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return JSONResponse(out)


async def count_traces(request: Request) -> JSONResponse:
    data = await params(request)
    count = await run_in_threadpool(ctx(request).store.count_traces, _experiment_ids(data), opt_str(data, "filter"))
    return JSONResponse({"count": count})


async def set_trace_tag(request: Request) -> JSONResponse:
    data = await params(request)
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    value = data.get("value")
    await run_in_threadpool(ctx(request).store.set_trace_tag, trace_id, require_str(data, "key"),
                            "" if value is None else str(value))
    return JSONResponse({})


async def delete_trace_tag(request: Request) -> JSONResponse:
    data = await params(request)
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    await run_in_threadpool(ctx(request).store.delete_trace_tag, trace_id, require_str(data, "key"))
    return JSONResponse({})


async def delete_traces(request: Request) -> JSONResponse:
    data = await params(request)
    experiment_id = require_str(data, "experiment_id")
    ids = [_normalize_trace_id(t) for t in (str_list(data, "trace_ids") or str_list(data, "request_ids"))]
    max_ts = opt_int(data, "max_timestamp_millis")
    if not ids and max_ts is None:
        raise InvalidRequest("give 'trace_ids' or 'max_timestamp_millis'")
    if ids and max_ts is not None:
        raise InvalidRequest("give either 'trace_ids' or 'max_timestamp_millis', not both")
    deleted = await run_in_threadpool(
        ctx(request).store.delete_traces, experiment_id, ids or None, max_ts,
        opt_int(data, "max_traces", None, minimum=1),
    )
    return JSONResponse({"traces_deleted": deleted})


routes = []
for _v in ("2.0", "3.0"):
    _P = f"/{_v}/mlflow/traces"
    routes += [
        *api_routes(f"{_P}/search", search_traces, ["GET", "POST"]),
        *api_routes(f"{_P}/count", count_traces, ["GET", "POST"]),
        *api_routes(f"{_P}/get", get_trace, ["GET"]),
        *api_routes(f"{_P}/batchGet", batch_get_traces, ["GET"]),
        *api_routes(f"{_P}/delete-traces", delete_traces, ["POST"]),
        *api_routes(_P, start_trace, ["POST"]),
        *api_routes(f"{_P}/{{trace_id}}/tags", set_trace_tag, ["PATCH"]),
        *api_routes(f"{_P}/{{trace_id}}/tags", delete_trace_tag, ["DELETE"]),
        *api_routes(f"{_P}/{{trace_id}}", get_trace_info, ["GET"]),
    ]
