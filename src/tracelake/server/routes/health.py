"""Liveness and version (the mlflow client probes these)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tracelake


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("OK")


# The mlflow client sends spans over OTLP only to servers reporting MLflow >= 3.4; we answer the
# MLflow API version we are compatible with (tested against the pinned client).
MLFLOW_COMPAT_VERSION = "3.17.2"


async def version(request: Request) -> PlainTextResponse:
    return PlainTextResponse(MLFLOW_COMPAT_VERSION)


async def tracelake_version(request: Request) -> PlainTextResponse:
    return PlainTextResponse(getattr(tracelake, "__version__", "0.1.0"))


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/version", version, methods=["GET"]),
    Route("/api/tracelake/version", tracelake_version, methods=["GET"]),
]
