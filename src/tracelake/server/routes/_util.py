"""Small helpers shared by route modules."""
from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.routing import Route

from tracelake.server.context import AppContext

API_PREFIXES = ("/api", "/ajax-api")


def ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def api_routes(path: str, endpoint: Callable, methods: list[str]) -> list[Route]:
    """The same endpoint under ``/api`` (clients) and ``/ajax-api`` (MLflow's UI convention)."""
    return [Route(prefix + path, endpoint, methods=methods) for prefix in API_PREFIXES]
