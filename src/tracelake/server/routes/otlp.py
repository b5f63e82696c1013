"""OTLP/HTTP ingest: ``POST /v1/traces`` (protobuf or JSON, optionally gzip'd).

A request is answered only after its spans are committed by the group-commit writer.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.ingest.masking import apply_masking
from tracelake.ingest.pipeline import DecodedRequest, decode_request
from tracelake.server.context import AppContext
from tracelake.server.requests import read_body
from tracelake.store.base import SpanBatch

# Bodies up to this size are decoded on the event loop (cheaper than a thread hop).
_INLINE_DECODE_BYTES = 256 * 1024
_PROTOBUF = "application/x-protobuf"


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


async def ingest_with(request: Request, decoder: Callable[..., DecodedRequest]) -> DecodedRequest:
    """One ingest request, whatever its format: read the body, ``decoder`` it (``decode_request``'s
    signature), prepare the batches and wait until the writer has committed them."""
    ctx = _ctx(request)
    ctx.limiter.check_server()
    body = await read_body(request, ctx.settings.max_request_bytes)
    headers = request.headers
    experiment_header = headers.get("x-tracelake-experiment-id") or headers.get("x-mlflow-experiment-id")
    name_header = headers.get("x-tracelake-experiment-name")

    def decode() -> DecodedRequest:
        return decoder(
            body, headers.get("content-type"), headers.get("content-encoding"),
            max_bytes=ctx.settings.max_request_bytes, default_experiment_id="0",
            header_experiment_id=experiment_header, header_experiment_name=name_header,
        )

    decoded = decode() if len(body) <= _INLINE_DECODE_BYTES else await run_in_threadpool(decode)
    batches = await run_in_threadpool(prepare_batches, ctx, decoded.batches)
    futures = [asyncio.wrap_future(ctx.writer.submit(batch)) for batch in batches]
    if futures:
        await asyncio.gather(*futures)
    return decoded


async def ingest_traces(request: Request) -> Response:
    await ingest_with(request, decode_request)
    if (request.headers.get("content-type") or "").split(";")[0].strip().lower() == _PROTOBUF:
        return Response(b"", media_type=_PROTOBUF)  # an empty ExportTraceServiceResponse
    return Response(b"{}", media_type="application/json")


def prepare_batches(ctx: AppContext, batches: list[SpanBatch]) -> list[Any]:
    """Resolve experiments, check they are active, apply limits and masking rules, and let
    the store build its rows (what the writer is handed)."""
    prepared = []
    for batch in batches:
        experiment_id = batch.experiment_id
        name = getattr(batch, "experiment_name", None)
        if name and not experiment_id:
            experiment_id = ctx.experiments.resolve_name(ctx.store, name)
        ctx.experiments.check_active(ctx.store, experiment_id)
        ctx.limiter.check_experiment(experiment_id)
        if experiment_id != batch.experiment_id:
            batch = SpanBatch(experiment_id=experiment_id, spans=batch.spans, traces=batch.traces)
            for update in batch.traces:
                update.experiment_id = experiment_id
        rules = ctx.masking.rules(ctx.store, experiment_id)
        if rules:
            batch = apply_masking(batch, rules)
        # Rows are built here, in the handler's thread, while the writer commits the group before.
        prepare = getattr(ctx.store, "prepare_spans", None)
        prepared.append(prepare(batch) if prepare is not None else batch)
    return prepared


routes = [Route("/v1/traces", ingest_traces, methods=["POST"])]
