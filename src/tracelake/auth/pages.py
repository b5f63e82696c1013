"""Server-rendered sign-in, account and admin pages: Jinja (autoescape on), forms, cookies.

Pages never cache, never frame, run no script, and post only to this origin.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tracelake.auth.authenticate import SESSION_COOKIE
from tracelake.auth.context import current_principal
from tracelake.errors import InvalidRequest
from tracelake.server.requests import read_body

LOGIN_CSRF_COOKIE = "tracelake_login_csrf"
MAX_FORM_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
}


def _ms(value: int | None) -> str:
    if not value:
        return ""
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("tracelake.auth", "templates"), autoescape=True)
    env.filters["ms"] = _ms
    return env


def user_menu(request: Request) -> Markup:
    """The signed-in user's menu (name, account, admin, sign out with its CSRF token), for the web
    UI's ``{% block user_menu %}``; empty with auth off or for a caller without a session."""
    principal = current_principal(request)
    if principal is None:
        return Markup("")
    return Markup(environment().get_template("user_menu.html").render(
        principal=principal, csrf_token=principal.csrf_token or ""))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal = context.pop("principal", None) or current_principal(request)
    csrf = principal.csrf_token if principal is not None and principal.csrf_token else ""
    context.setdefault("csrf_token", csrf)
    html = environment().get_template(template).render(principal=principal, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


async def form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("expected a form (application/x-www-form-urlencoded)")
    body = await read_body(request, MAX_FORM_BYTES)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=100)
    return {k: v[0] for k, v in fields.items()}


def safe_next(target: str | None) -> str:
    """Only a path on this server (no scheme, no host, no ``//``): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


def set_session_cookie(request: Request, response: Response, secret: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, secret, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
