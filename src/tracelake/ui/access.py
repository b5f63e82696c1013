"""What the web UI may show the caller, and what its pages need from auth.

With auth off every experiment is visible and there is no signed-in user, no CSRF token and no
user menu. With auth on, listings keep only the experiments the caller may read
(``tracelake.auth.readable_experiment_ids``); an experiment's own pages and JSON are guarded by
their rules in ``tracelake.server.permissions`` before the handler runs.
"""
from __future__ import annotations

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tracelake.auth import current_principal, readable_experiment_ids
from tracelake.auth.context import auth_service
from tracelake.store.sql import overview
from tracelake.store.sql.store import SqlStore


async def visible_experiment_ids(request: Request, store: SqlStore) -> list[str] | None:
    """The ids of the active experiments the caller may read; None when that is all of them (auth
    off, or an admin), so listings need no filter."""
    if auth_service(request) is None:
        return None
    principal = current_principal(request)
    if principal is not None and principal.is_admin:
        return None
    candidates = await run_in_threadpool(overview.active_experiment_ids, store)
    return await readable_experiment_ids(request, candidates)


def csrf_token(request: Request) -> str:
    """The signed-in session's CSRF token, for the page's ``<meta name="csrf-token">``; empty with
    auth off or for a caller not signed in through the browser (a token or basic credentials)."""
    principal = current_principal(request)
    return (principal.csrf_token or "") if principal is not None else ""


def user_menu(request: Request) -> Markup:
    """The signed-in user's menu (name, account and tokens, sign out); empty with auth off."""
    if auth_service(request) is None:
        return Markup("")
    from tracelake.auth.pages import user_menu as auth_user_menu

    return auth_user_menu(request)
