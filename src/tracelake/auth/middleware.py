"""``AuthMiddleware``: pure ASGI; authenticates every request and applies the route's rule from
``tracelake.server.permissions`` before the handler runs.

Order of answers: a route with no declared rule → 403 (fail closed, logged); public → pass;
no or stale credentials → 401 (JSON, or a redirect to ``/login`` for a page); wrong credentials
→ 401; too many failed sign-ins → 429; a cookie-authenticated unsafe request without the
session's CSRF token → 403; then the rule (403, or 404 where existence must not leak).

The request body is read once (bounded) when a rule needs it, and replayed to the handler.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracelake.auth import tokens
from tracelake.auth.authenticate import SESSION_COOKIE
from tracelake.auth.context import set_principal
from tracelake.auth.model import MANAGE, Principal, SecurableType
from tracelake.auth.service import AuthService
from tracelake.errors import InvalidRequest, NotFound, PermissionDenied, TracelakeError, Unauthenticated
from tracelake.server.permissions import Access, AfterHook, Rule, Targets, rule_for
from tracelake.server.requests import MAX_JSON_BODY, read_body
from tracelake.server.responses import error_response

log = logging.getLogger("tracelake.auth")

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_API_PREFIXES = ("/api/", "/ajax-api/", "/v1/")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _Replay:
    """``receive`` that hands the already-read body to the app, then defers to the real one."""

    def __init__(self, body: bytes, receive: Receive) -> None:
        self._body: bytes | None = body
        self._receive = receive

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        return await self._receive()


class AuthMiddleware:
    def __init__(self, app: ASGIApp, service: AuthService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # none are served; refuse rather than let one bypass auth
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        route, child = _match(scope)
        if route is None:  # 404 / 405 from the router: nothing to protect
            await self.app(scope, receive, send)
            return
        rule = rule_for(route, scope["method"])
        if rule is None:
            log.error("no permission rule is declared for %s %s: refused", scope["method"], route.path)
            await error_response(PermissionDenied(
                f"no permission rule is declared for {scope['method']} {route.path}"))(scope, receive, send)
            return
        if rule.access is Access.PUBLIC:
            await self.app(scope, receive, send)
            return
        request = Request({**scope, **child}, receive)
        principal: Principal | None = None
        try:
            principal = await self._authenticate(request)
            if principal is None:
                await self._unauthenticated(request)(scope, receive, send)
                return
            needs_body = request.method not in _SAFE_METHODS and (
                rule.target is not None or principal.via == "session")
            if needs_body:
                ctx = request.app.state.ctx
                # Starlette serves a cached ``_body`` to every later read, so targets may read params twice.
                request._body = await read_body(request, max(ctx.settings.max_request_bytes, MAX_JSON_BODY))
                receive = _Replay(request._body, receive)
            if principal.via == "session" and request.method not in _SAFE_METHODS:
                _check_csrf(request, principal)
            targets = await self._authorize(rule, principal, request)
        except TracelakeError as exc:
            await _refusal(rule, exc, principal, {**scope, **child})(scope, receive, send)
            return
        set_principal(scope, principal)
        if rule.after is None:
            await self.app(scope, receive, send)
        else:
            await self._with_after_hook(rule.after, principal, targets, scope, receive, send)

    async def _authenticate(self, request: Request) -> Principal | None:
        return await run_in_threadpool(
            self.service.authenticator.authenticate, request.headers.get("authorization"),
            request.cookies.get(SESSION_COOKIE), _client(request.scope))

    @staticmethod
    def _unauthenticated(request: Request) -> Response:
        path = request.url.path
        if request.method in ("GET", "HEAD") and not path.startswith(_API_PREFIXES):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return _error(Unauthenticated("authentication required: send a token ('Authorization: Bearer ...') "
                                      "or basic credentials"))

    async def _authorize(self, rule: Rule, principal: Principal, request: Request) -> Targets:
        if rule.access is Access.ADMIN:
            if not principal.is_admin:
                raise PermissionDenied("admin permission is required")
            return Targets()
        if rule.target is None:  # AUTHENTICATED
            return Targets()
        targets = await rule.target(request)
        if rule.access is Access.SECURABLE:
            await run_in_threadpool(self._check_securable, principal, targets)
        else:
            assert rule.privilege is not None
            await run_in_threadpool(self._check_experiments, principal, targets, rule.privilege)
        return targets

    def _check_securable(self, principal: Principal, targets: Targets) -> None:
        assert targets.securable is not None
        securable_type, securable_id = targets.securable
        if principal.is_admin:
            return
        if securable_type != SecurableType.EXPERIMENT.value:
            raise PermissionDenied(f"admin permission is required for grants on a {securable_type}")
        self.service.require_experiments(principal, [(securable_id, f"No experiment with id '{securable_id}'")],
                                         MANAGE)

    def _check_experiments(self, principal: Principal, targets: Targets, privilege: str) -> None:
        if principal.is_admin:
            return
        if targets.admin_only:
            raise PermissionDenied("admin permission is required")
        # (experiment id, the 404 message a missing object of the kind named would get)
        checks = [(e, targets.not_found or f"No experiment with id '{e}'") for e in targets.experiment_ids]
        if targets.trace_ids:
            owners = self.service.experiments_of_traces(targets.trace_ids)
            for trace_id in targets.trace_ids:
                missing = f"Trace '{trace_id}' not found"  # the store's wording
                if trace_id not in owners:
                    raise NotFound(missing)
                checks.append((owners[trace_id], missing))
        names = targets.experiment_names + targets.new_experiment_names
        found = self.service.experiment_ids_by_name(names) if names else {}
        for name in targets.experiment_names:
            missing = f"Could not find experiment with name '{name}'"  # the route's wording
            if name not in found:
                raise NotFound(missing)
            checks.append((found[name], missing))
        for name in targets.new_experiment_names:
            if name in found:  # existing: its name is taken anyway, so say so
                if not self.service.readable(principal, [found[name]]):
                    raise PermissionDenied(f"experiment '{name}' exists and you may not write to it")
                checks.append((found[name], f"No experiment with id '{found[name]}'"))
        if not checks and not targets.new_experiment_names:
            raise InvalidRequest("the request names no experiment")
        self.service.require_experiments(principal, checks, privilege)

    async def _with_after_hook(self, hook: AfterHook, principal: Principal, targets: Targets, scope: Scope,
                               receive: Receive, send: Send) -> None:
        """Hold the response until the hook has run on its body (only for small JSON answers)."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if start["status"] == 200:
                body = await run_in_threadpool(hook, self.service, principal, targets, body)
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-length"] = str(len(body))
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, capture)


def _error(exc: TracelakeError) -> Response:
    response = error_response(exc)
    if isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="tracelake"'
    return response


def _refusal(rule: Rule, exc: TracelakeError, principal: Principal | None, scope: Scope) -> Response:
    """The answer to a refused request: the rule's own error page (the web UI's HTML) once the
    caller is known, else JSON."""
    if rule.error_page is None or principal is None:
        return _error(exc)
    page_scope = {**scope, "state": {**scope.get("state", {})}}
    set_principal(page_scope, principal)  # the page shows who is signed in
    return rule.error_page(Request(page_scope), exc)


def _match(scope: Scope) -> tuple[BaseRoute | None, dict[str, Any]]:
    """The route the router will pick (the first full match), with its path params; None when
    nothing fully matches (the router then answers 405 or 404)."""
    for route in scope["app"].routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None, {}


def _check_csrf(request: Request, principal: Principal) -> None:
    """A cookie is sent by the browser on its own: an unsafe request riding on it must also
    carry the session's CSRF token (header, or form field for plain HTML forms)."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent and (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(getattr(request, "_body", b"").decode("utf-8", "replace"), max_num_fields=1000)
        sent = (form.get(CSRF_FIELD) or [None])[0]
    if not tokens.same(sent, principal.csrf_token):
        raise PermissionDenied("missing or wrong CSRF token")
