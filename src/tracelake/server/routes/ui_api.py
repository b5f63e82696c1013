"""JSON the web UI needs that the MLflow API lacks, under ``/api/tracelake/``.

=====================================================  =========================================
path                                                   answer
=====================================================  =========================================
``GET  /experiments``                                  experiments with counts, last activity,
                                                       7-day error rate
``GET  /experiments/{id}/traces``                      a page of table rows (filter, order_by,
                                                       page_token, max_results) + ``seq``
``GET  /experiments/{id}/changes?since_seq=&filter=``  rows changed since ``seq`` (live update)
``GET  /experiments/{id}/sessions``                    sessions, newest first, keyset-paged
``GET  /experiments/{id}/metrics?minutes=``            series from the per-minute rollups
``GET  /traces/{trace_id}``                            the trace page's header data
``GET  /traces/{trace_id}/spans?limit=&page_token=``   span index as columns (no content)
``GET  /traces/{trace_id}/spans/{span_id}``            one span with inputs, outputs, events
``POST /traces/export``                                traces (info + spans) in MLflow JSON
=====================================================  =========================================

A bad filter answers 400 with ``position`` and ``reason`` besides ``message``, so the filter bar
can point at the token.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.errors import BadFilter, InvalidRequest
from tracelake.server.mlflow_json import trace_json, without_gc
from tracelake.server.requests import opt_int, opt_str, params, str_list
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import ctx
from tracelake.store.sql import overview
from tracelake.store.sql.store import SqlStore
from tracelake.ui import access, present

PREFIX = "/api/tracelake"
MAX_EXPORT = 1000


def _store(request: Request) -> SqlStore:
    store = ctx(request).store
    if not isinstance(store, SqlStore):
        raise InvalidRequest("the web UI needs the SQL store")
    return store


def _filter_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadFilter as exc:
            return JSONResponse({"error_code": exc.error_code, "message": exc.message, "reason": exc.reason,
                                 "position": exc.position}, status_code=exc.status)
    return wrapped


def experiment_json(e: overview.ExperimentOverview) -> dict[str, Any]:
    return {"id": e.experiment_id, "name": e.name, "created": e.creation_time, "traces": e.trace_count,
            "last_activity": e.last_trace_time, "requests_7d": e.requests_7d, "errors_7d": e.errors_7d,
            "error_rate": e.error_rate}


async def list_experiments(request: Request) -> JSONResponse:
    """Only the experiments the caller may read, when auth is on."""
    store = _store(request)
    visible = await access.visible_experiment_ids(request, store)
    found = await run_in_threadpool(overview.experiment_overviews, store, int(time.time() * 1000), 1000, visible)
    return JSONResponse({"experiments": [experiment_json(e) for e in found]})


@_filter_errors
async def list_traces(request: Request) -> JSONResponse:
    data = await params(request)
    out = await run_in_threadpool(
        present.table_page, _store(request), request.path_params["experiment_id"], opt_str(data, "filter"),
        str_list(data, "order_by") or None, opt_str(data, "page_token"),
        opt_int(data, "max_results", present.TABLE_PAGE, minimum=1, maximum=500),
    )
    return JSONResponse(out)


@_filter_errors
async def trace_changes(request: Request) -> JSONResponse:
    data = await params(request)
    changes = await run_in_threadpool(
        overview.changed_traces, _store(request), request.path_params["experiment_id"],
        opt_int(data, "since_seq", 0, minimum=0), opt_str(data, "filter"),
    )
    return JSONResponse({"traces": [present.trace_row(t) for t in changes.traces], "seq": changes.seq,
                         "more": changes.more})


def session_json(s: overview.SessionSummary) -> dict[str, Any]:
    return {"id": s.session_id, "turns": s.turns, "first": s.first_time, "last": s.last_time, "errors": s.errors,
            "tokens": s.total_tokens, "cost": s.cost, "user": s.user_id, "last_request": s.last_request}


async def list_sessions(request: Request) -> JSONResponse:
    data = await params(request)
    page = await run_in_threadpool(
        overview.sessions_page, _store(request), request.path_params["experiment_id"],
        opt_int(data, "max_results", 50, minimum=1, maximum=500), opt_str(data, "page_token"),
    )
    out: dict[str, Any] = {"sessions": [session_json(s) for s in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return JSONResponse(out)


def metrics_json(step: int, points: list[overview.SeriesPoint]) -> dict[str, Any]:
    return {"step_minutes": step, "points": [
        {"t": p.minute * 60_000, "requests": p.requests, "errors": p.errors, "p50": p.latency_p50_ms,
         "p95": p.latency_p95_ms, "p99": p.latency_p99_ms, "input_tokens": p.input_tokens,
         "output_tokens": p.output_tokens, "cost": p.cost} for p in points]}


async def metrics(request: Request) -> JSONResponse:
    data = await params(request)
    minutes = opt_int(data, "minutes", 60 * 24, minimum=5, maximum=60 * 24 * 90)
    assert minutes is not None
    step, points = await run_in_threadpool(overview.metric_series, _store(request),
                                           request.path_params["experiment_id"], int(time.time() // 60), minutes)
    return JSONResponse(metrics_json(step, points))


async def trace_summary(request: Request) -> JSONResponse:
    info = await run_in_threadpool(_store(request).get_trace_info, request.path_params["trace_id"])
    return JSONResponse({"trace": present.trace_summary(info)})


async def span_index(request: Request) -> JSONResponse:
    data = await params(request)
    page = await run_in_threadpool(
        overview.span_index, _store(request), request.path_params["trace_id"],
        opt_int(data, "limit", 5000, minimum=1, maximum=overview.MAX_SPAN_PAGE), opt_str(data, "page_token"),
    )
    return JSONResponse(present.span_index_json(page))


async def span_detail(request: Request) -> JSONResponse:
    span = await run_in_threadpool(overview.span_detail, _store(request), request.path_params["trace_id"],
                                   request.path_params["span_id"])
    return JSONResponse({"span": present.span_detail_json(span)})


async def export_traces(request: Request) -> Response:
    data = await params(request)
    ids = str_list(data, "trace_ids")
    if not ids:
        raise InvalidRequest("give 'trace_ids'")
    if len(ids) > MAX_EXPORT:
        raise InvalidRequest(f"export at most {MAX_EXPORT} traces at a time")
    store = _store(request)

    def answer() -> bytes:
        return orjson.dumps({"traces": [trace_json(store.read_trace(trace_id)) for trace_id in ids]})

    return Response(await run_in_threadpool(without_gc, answer), media_type="application/json")


routes = [
    Route(f"{PREFIX}/experiments", list_experiments, methods=["GET"]),
    Route(f"{PREFIX}/experiments/{{experiment_id}}/traces", list_traces, methods=["GET"]),
    Route(f"{PREFIX}/experiments/{{experiment_id}}/changes", trace_changes, methods=["GET"]),
    Route(f"{PREFIX}/experiments/{{experiment_id}}/sessions", list_sessions, methods=["GET"]),
    Route(f"{PREFIX}/experiments/{{experiment_id}}/metrics", metrics, methods=["GET"]),
    Route(f"{PREFIX}/traces/export", export_traces, methods=["POST"]),
    Route(f"{PREFIX}/traces/{{trace_id}}", trace_summary, methods=["GET"]),
    Route(f"{PREFIX}/traces/{{trace_id}}/spans", span_index, methods=["GET"]),
    Route(f"{PREFIX}/traces/{{trace_id}}/spans/{{span_id}}", span_detail, methods=["GET"]),
]
