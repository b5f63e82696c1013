"""The tracelake SDK's native ingest: ``POST /api/tracelake/v1/spans`` (see ``ingest.native``).

Same contract as ``/v1/traces``: experiment from the headers (or the batch's resource), 413 /
415 / 400 / 422 with a clear message, 503 + Retry-After while the writer is full, and an answer
only after the spans are committed.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.ingest.native import decode_native_request
from tracelake.server.routes.otlp import ingest_with

PATH = "/api/tracelake/v1/spans"


async def ingest_native(request: Request) -> Response:
    decoded = await ingest_with(request, decode_native_request)
    return Response(b'{"spans":%d}' % decoded.span_count, media_type="application/json")


routes = [Route(PATH, ingest_native, methods=["POST"])]
