"""Users, groups, tokens and permissions: the REST API under ``/api/tracelake`` and the sign-in,
account and admin pages. Who may call what is declared in ``tracelake.server.permissions``;
handlers here only scope results to the caller (own tokens) and validate input.

With auth off every route here answers 404 ("authentication is not enabled").
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tracelake.auth import tokens
from tracelake.auth.authenticate import SESSION_COOKIE
from tracelake.auth.context import auth_service, current_principal
from tracelake.auth.model import PRIVILEGE_LADDERS, Grant, Group, Principal, SecurableType, TokenInfo, User
from tracelake.auth.pages import LOGIN_CSRF_COOKIE, clear_session_cookie, form, render, safe_next, set_session_cookie
from tracelake.auth.service import AuthService
from tracelake.errors import InvalidRequest, NotFound, RateLimited, TracelakeError, Unauthenticated
from tracelake.server.requests import opt_int, opt_str, params, require_str
from tracelake.server.responses import JSONResponse

DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 3650
_DAY_MS = 86_400_000


def _service(request: Request) -> AuthService:
    service = auth_service(request)
    if service is None:
        raise NotFound("authentication is not enabled on this server (start it with --auth)")
    return service


def _me(request: Request) -> Principal:
    principal = current_principal(request)
    if principal is None:  # the middleware lets no such request through; refuse rather than assume
        raise Unauthenticated("authentication required")
    return principal


def user_json(u: User) -> dict[str, Any]:
    return {"username": u.username, "is_admin": u.is_admin, "is_active": u.is_active, "created_at": u.created_at,
            "has_password": u.has_password}


def token_json(t: TokenInfo) -> dict[str, Any]:
    return dataclasses.asdict(t)


def group_json(g: Group) -> dict[str, Any]:
    return {"name": g.name, "members": list(g.members)}


def grant_json(g: Grant) -> dict[str, Any]:
    return {"principal_type": g.principal_type.value, "principal": g.principal,
            "securable_type": g.securable_type.value, "securable_id": g.securable_id, "privilege": g.privilege}


def _bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(f"parameter '{key}' must be a boolean")


def _expiry(data: dict[str, Any]) -> int | None:
    days = opt_int(data, "expires_in_days", DEFAULT_TOKEN_DAYS, minimum=0, maximum=MAX_TOKEN_DAYS)
    return None if not days else int(time.time() * 1000) + days * _DAY_MS


# -- users ---------------------------------------------------------------------------------------

async def users_me(request: Request) -> JSONResponse:
    service, me = _service(request), _me(request)
    user = await run_in_threadpool(service.store.require_user, me.username)
    return JSONResponse({"user": user_json(user), "via": me.via})


async def change_my_password(request: Request) -> JSONResponse:
    service, me = _service(request), _me(request)
    data = await params(request)
    await _change_password(request, service, me, require_str(data, "current_password"),
                           require_str(data, "new_password"))
    return JSONResponse({})


async def _change_password(request: Request, service: AuthService, me: Principal, current: str, new: str) -> None:
    client = request.client.host if request.client else "unknown"
    await run_in_threadpool(service.authenticator.login, me.username, current, client)
    await run_in_threadpool(lambda: service.store.update_user(me.username, password=new))


async def list_users(request: Request) -> JSONResponse:
    users = await run_in_threadpool(_service(request).store.list_users)
    return JSONResponse({"users": [user_json(u) for u in users]})


async def create_user(request: Request) -> JSONResponse:
    service = _service(request)
    data = await params(request)
    user = await run_in_threadpool(service.store.create_user, require_str(data, "username"),
                                   opt_str(data, "password"), bool(_bool(data, "is_admin")))
    return JSONResponse({"user": user_json(user)})


async def get_user(request: Request) -> JSONResponse:
    user = await run_in_threadpool(_service(request).store.require_user, request.path_params["username"])
    return JSONResponse({"user": user_json(user)})


async def update_user(request: Request) -> JSONResponse:
    service = _service(request)
    data = await params(request)
    user = await run_in_threadpool(lambda: service.store.update_user(
        request.path_params["username"], password=opt_str(data, "password"), is_admin=_bool(data, "is_admin"),
        is_active=_bool(data, "is_active")))
    return JSONResponse({"user": user_json(user)})


async def delete_user(request: Request) -> JSONResponse:
    await run_in_threadpool(_service(request).store.delete_user, request.path_params["username"])
    return JSONResponse({})


# -- groups --------------------------------------------------------------------------------------

async def list_groups(request: Request) -> JSONResponse:
    groups = await run_in_threadpool(_service(request).store.list_groups)
    return JSONResponse({"groups": [group_json(g) for g in groups]})


async def create_group(request: Request) -> JSONResponse:
    service = _service(request)
    group = await run_in_threadpool(service.store.create_group, require_str(await params(request), "name"))
    return JSONResponse({"group": group_json(group)})


async def delete_group(request: Request) -> JSONResponse:
    await run_in_threadpool(_service(request).store.delete_group, request.path_params["name"])
    return JSONResponse({})


async def add_member(request: Request) -> JSONResponse:
    service = _service(request)
    username = require_str(await params(request), "username")
    await run_in_threadpool(service.store.add_member, request.path_params["name"], username)
    return JSONResponse({"group": group_json(await run_in_threadpool(service.store.require_group,
                                                                     request.path_params["name"]))})


async def remove_member(request: Request) -> JSONResponse:
    service = _service(request)
    await run_in_threadpool(service.store.remove_member, request.path_params["name"],
                            request.path_params["username"])
    return JSONResponse({})


# -- personal access tokens ----------------------------------------------------------------------

def _token_owner(me: Principal, data: dict[str, Any]) -> str:
    """Whose tokens: the caller's; an admin may name another user."""
    username = opt_str(data, "username")
    if username and username != me.username and not me.is_admin:
        raise NotFound(f"no user named {username!r}")  # a non-admin may not even probe names
    return username or me.username


async def list_tokens(request: Request) -> JSONResponse:
    service, me = _service(request), _me(request)
    username = _token_owner(me, await params(request))
    found = await run_in_threadpool(service.store.list_tokens, username)
    return JSONResponse({"tokens": [token_json(t) for t in found]})


async def create_token(request: Request) -> JSONResponse:
    service, me = _service(request), _me(request)
    data = await params(request)
    new = await run_in_threadpool(service.store.create_token, _token_owner(me, data), require_str(data, "name"),
                                  _expiry(data))
    return JSONResponse({"token": new.secret, "token_info": token_json(new.info)},
                        headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> JSONResponse:
    service, me = _service(request), _me(request)
    await run_in_threadpool(_revoke_own, service, me, request.path_params["token_id"])
    return JSONResponse({})


def _revoke_own(service: AuthService, me: Principal, token_id: int) -> None:
    try:
        token = service.store.get_token(token_id)
    except NotFound:
        token = None
    if token is None or (token.username != me.username and not me.is_admin):
        raise NotFound(f"no token with id {token_id}")  # someone else's token does not exist for you
    service.store.revoke_token(token_id)


# -- permissions ---------------------------------------------------------------------------------

def _check_securable_exists(request: Request, securable_type: str, securable_id: str) -> None:
    if securable_type == SecurableType.EXPERIMENT.value:
        request.app.state.ctx.store.get_experiment(securable_id)  # NotFound when missing


async def list_permissions(request: Request) -> JSONResponse:
    service = _service(request)
    data = await params(request)
    grants = await run_in_threadpool(service.grants.list, require_str(data, "securable_type"),
                                     require_str(data, "securable_id"))
    return JSONResponse({"grants": [grant_json(g) for g in grants]})


async def set_permission(request: Request) -> JSONResponse:
    service = _service(request)
    data = await params(request)
    stype, sid = require_str(data, "securable_type"), require_str(data, "securable_id")
    await run_in_threadpool(_check_securable_exists, request, stype, sid)
    grant = await run_in_threadpool(service.grants.set, require_str(data, "principal_type"),
                                    require_str(data, "principal"), stype, sid, require_str(data, "privilege"))
    return JSONResponse({"grant": grant_json(grant)})


async def delete_permission(request: Request) -> JSONResponse:
    service = _service(request)
    data = await params(request)
    removed = await run_in_threadpool(service.grants.revoke, require_str(data, "principal_type"),
                                      require_str(data, "principal"), require_str(data, "securable_type"),
                                      require_str(data, "securable_id"))
    if not removed:
        raise NotFound("no such grant")
    return JSONResponse({})


# -- pages ---------------------------------------------------------------------------------------

async def login_page(request: Request) -> Response:
    _service(request)
    return _login_form(request, safe_next(request.query_params.get("next")))


def _login_form(request: Request, next_path: str, error: str | None = None, username: str = "",
                status_code: int = 200) -> Response:
    # Login CSRF: a double-submit value, in an HttpOnly cookie and in the form.
    csrf = tokens.new_secret()
    response = render(request, "login.html", status_code, principal=None, csrf_token=csrf, next=next_path,
                      error=error, username=username)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, max_age=3600, path="/login", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


async def login_submit(request: Request) -> Response:
    service = _service(request)
    fields = await form(request)
    next_path = safe_next(fields.get("next"))
    username = fields.get("username", "")
    if not tokens.same(fields.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_form(request, next_path, "The form expired; please sign in again.", username, 403)
    client = request.client.host if request.client else "unknown"
    try:
        user = await run_in_threadpool(service.authenticator.login, username, fields.get("password", ""), client)
    except (Unauthenticated, RateLimited) as exc:
        return _login_form(request, next_path, exc.message, username, exc.status)
    session = await run_in_threadpool(service.store.create_session, user.user_id, service.session_ttl_s)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, session.secret, int(service.session_ttl_s))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    service = _service(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await run_in_threadpool(service.store.delete_session, secret)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


async def account_page(request: Request) -> Response:
    return await _account(request)


async def _account(request: Request, error: str | None = None, notice: str | None = None, new_token: Any = None,
                   status_code: int = 200) -> Response:
    service, me = _service(request), _me(request)
    found = await run_in_threadpool(service.store.list_tokens, me.username)
    return render(request, "account.html", status_code, tokens=found, new_token=new_token, error=error,
                  notice=notice)


async def account_submit(request: Request) -> Response:
    service, me = _service(request), _me(request)
    fields = await form(request)
    action = fields.get("action")
    try:
        if action == "create_token":
            new = await run_in_threadpool(service.store.create_token, me.username, fields.get("name", ""),
                                          _expiry(fields))
            return await _account(request, new_token=new)
        if action == "revoke_token":
            token_id = opt_int(fields, "token_id")
            if token_id is None:
                raise InvalidRequest("missing token_id")
            await run_in_threadpool(_revoke_own, service, me, token_id)
            return await _account(request, notice="Token revoked.")
        if action == "change_password":
            await _change_password(request, service, me, fields.get("current_password", ""),
                                   fields.get("new_password", ""))
            return await _account(request, notice="Password changed; other sessions were signed out.")
        raise InvalidRequest(f"unknown action {action!r}")
    except TracelakeError as exc:
        return await _account(request, error=exc.message, status_code=exc.status)


async def admin_page(request: Request) -> Response:
    return await _admin(request, notice=request.query_params.get("done") and "Done.")


async def _admin(request: Request, error: str | None = None, notice: str | None = None,
                 status_code: int = 200) -> Response:
    service = _service(request)

    def load() -> dict[str, Any]:
        users, groups = service.store.list_users(), service.store.list_groups()
        groups_of: dict[str, list[str]] = {u.username: [] for u in users}
        for g in groups:
            for member in g.members:
                groups_of.setdefault(member, []).append(g.name)
        privileges = sorted({p for ladder in PRIVILEGE_LADDERS.values() for p in ladder})
        return {"users": users, "groups": groups, "groups_of": groups_of, "grants": service.grants.list(),
                "securable_types": [t.value for t in SecurableType], "privileges": privileges}

    return render(request, "admin.html", status_code, error=error, notice=notice, **await run_in_threadpool(load))


def _admin_action(request: Request, service: AuthService, f: dict[str, str]) -> None:
    store, action, username = service.store, f.get("action"), f.get("username", "")
    if action == "create_user":
        store.create_user(username, f.get("password", ""), f.get("is_admin") == "1")
    elif action == "delete_user":
        store.delete_user(username)
    elif action == "set_admin":
        store.update_user(username, is_admin=f.get("is_admin") == "1")
    elif action == "set_active":
        store.update_user(username, is_active=f.get("is_active") == "1")
    elif action == "reset_password":
        store.update_user(username, password=f.get("password", ""))
    elif action == "create_group":
        store.create_group(f.get("name", ""))
    elif action == "delete_group":
        store.delete_group(f.get("name", ""))
    elif action == "add_member":
        store.add_member(f.get("name", ""), username)
    elif action == "remove_member":
        store.remove_member(f.get("name", ""), username)
    elif action == "grant":
        _check_securable_exists(request, f.get("securable_type", ""), f.get("securable_id", ""))
        service.grants.set(f.get("principal_type", ""), f.get("principal", ""), f.get("securable_type", ""),
                           f.get("securable_id", ""), f.get("privilege", ""))
    elif action == "revoke":
        service.grants.revoke(f.get("principal_type", ""), f.get("principal", ""), f.get("securable_type", ""),
                              f.get("securable_id", ""))
    else:
        raise InvalidRequest(f"unknown action {action!r}")


async def admin_submit(request: Request) -> Response:
    service = _service(request)
    fields = await form(request)
    try:
        await run_in_threadpool(_admin_action, request, service, fields)
    except TracelakeError as exc:
        return await _admin(request, error=exc.message, status_code=exc.status)
    return RedirectResponse("/admin?done=1", status_code=303)  # post/redirect/get


_TL = "/api/tracelake"
routes = [
    Route(f"{_TL}/users/me", users_me, methods=["GET"]),
    Route(f"{_TL}/users/me/password", change_my_password, methods=["POST"]),
    Route(f"{_TL}/users", list_users, methods=["GET"]),
    Route(f"{_TL}/users", create_user, methods=["POST"]),
    Route(f"{_TL}/users/{{username}}", get_user, methods=["GET"]),
    Route(f"{_TL}/users/{{username}}", update_user, methods=["PATCH"]),
    Route(f"{_TL}/users/{{username}}", delete_user, methods=["DELETE"]),
    Route(f"{_TL}/groups", list_groups, methods=["GET"]),
    Route(f"{_TL}/groups", create_group, methods=["POST"]),
    Route(f"{_TL}/groups/{{name}}", delete_group, methods=["DELETE"]),
    Route(f"{_TL}/groups/{{name}}/members", add_member, methods=["POST"]),
    Route(f"{_TL}/groups/{{name}}/members/{{username}}", remove_member, methods=["DELETE"]),
    Route(f"{_TL}/tokens", list_tokens, methods=["GET"]),
    Route(f"{_TL}/tokens", create_token, methods=["POST"]),
    Route(f"{_TL}/tokens/{{token_id:int}}", revoke_token, methods=["DELETE"]),
    Route(f"{_TL}/permissions", list_permissions, methods=["GET"]),
    Route(f"{_TL}/permissions", set_permission, methods=["POST"]),
    Route(f"{_TL}/permissions", delete_permission, methods=["DELETE"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/account", account_page, methods=["GET"]),
    Route("/account", account_submit, methods=["POST"]),
    Route("/admin", admin_page, methods=["GET"]),
    Route("/admin", admin_submit, methods=["POST"]),
]
