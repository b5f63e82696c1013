"""Where a request's principal lives, and helpers for route handlers."""
from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from tracelake.auth.model import Principal

if TYPE_CHECKING:
    from tracelake.auth.service import AuthService

PRINCIPAL_KEY = "tracelake_principal"


def auth_service(conn: HTTPConnection) -> AuthService | None:
    """The app's auth service; None when the server runs without auth."""
    return getattr(conn.app.state, "auth", None)


def current_principal(conn: HTTPConnection) -> Principal | None:
    return conn.scope.get("state", {}).get(PRINCIPAL_KEY)


def set_principal(scope: dict, principal: Principal) -> None:
    scope.setdefault("state", {})[PRINCIPAL_KEY] = principal


async def readable_experiment_ids(conn: HTTPConnection, experiment_ids: list[str]) -> list[str]:
    """``experiment_ids`` less those the caller may not read (all of them when auth is off)."""
    service = auth_service(conn)
    if service is None:
        return experiment_ids
    principal = current_principal(conn)
    if principal is None:
        return []
    return await run_in_threadpool(service.readable, principal, experiment_ids)
