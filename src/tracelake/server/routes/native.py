"""The tracelake SDK's native ingest: ``POST /api/tracelake/v1/spans`` (see ``ingest.native``).

Same contract as ``/v1/traces``: experiment from the headers (or the batch's resource), 413 /
415 / 400 / 422 with a clear message, 503 + Retry-After while the writer is full, and an answer
only after the spans are committed.
"""
from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.ingest.native import decode_native_request
from tracelake.server.context import AppContext
from tracelake.server.requests import read_body
from tracelake.server.routes.otlp import INLINE_DECODE_BYTES, prepare_batches

PATH = "/api/tracelake/v1/spans"


async def ingest_native(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    ctx.limiter.check_server()
    body = await read_body(request, ctx.settings.max_request_bytes)
    headers = request.headers
    experiment_header = headers.get("x-tracelake-experiment-id") or headers.get("x-mlflow-experiment-id")

    def decode():
        return decode_native_request(
            body, headers.get("content-type"), headers.get("content-encoding"),
            max_bytes=ctx.settings.max_request_bytes, default_experiment_id="0",
            header_experiment_id=experiment_header, header_experiment_name=headers.get("x-tracelake-experiment-name"),
        )

    decoded = decode() if len(body) <= INLINE_DECODE_BYTES else await run_in_threadpool(decode)
    batches = await run_in_threadpool(prepare_batches, ctx, decoded.batches)
    futures = [asyncio.wrap_future(ctx.writer.submit(batch)) for batch in batches]
    if futures:
        await asyncio.gather(*futures)
    return Response(b'{"spans":%d}' % decoded.span_count, media_type="application/json")


routes = [Route(PATH, ingest_native, methods=["POST"])]
