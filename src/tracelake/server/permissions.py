"""Every route of the server and the permission it needs, declared in ONE table (``TABLE``).

Access levels:

- ``PUBLIC``: no credentials needed (``/health``, ``/version`` — the mlflow client must reach
  ``/version`` or it silently drops to a slow path — and the login page).
- ``AUTHENTICATED``: any signed-in principal; the handler scopes what it returns to the caller
  (trace search filters experiments, tokens are the caller's own).
- ``EXPERIMENT``: a privilege (READ < EDIT < MANAGE) on the experiment(s) the request names,
  found by the rule's *target* (an ``experiment_id`` parameter, a trace's experiment, the
  experiments an OTLP request writes to …). A caller who cannot even READ an experiment gets
  404 worded as for a missing one, so existence does not leak; one who can read it but lacks
  the privilege gets 403.
- ``SECURABLE``: the permission API: MANAGE on the experiment whose grants are read or changed;
  admin for other securable types (lake tables, gateway endpoints).
- ``ADMIN``: admins only.

A route without a rule is refused (fail closed), and ``tests/auth/test_route_rules.py``
enumerates ``app.routes`` and fails until every route, including those added later, is declared
here. With auth off none of this runs.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from tracelake.auth.model import EDIT, MANAGE, READ, Principal, SecurableType
from tracelake.errors import InvalidRequest, NotFound, TracelakeError
from tracelake.server.requests import params, require_str, str_list
from tracelake.server.routes._util import API_PREFIXES


class Access(str, Enum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    EXPERIMENT = "experiment"
    SECURABLE = "securable"
    ADMIN = "admin"


@dataclass(frozen=True)
class Targets:
    """What a request acts on, read from it before the handler runs."""

    experiment_ids: tuple[str, ...] = ()
    trace_ids: tuple[str, ...] = ()
    experiment_names: tuple[str, ...] = ()  # must exist and be readable (404 otherwise)
    new_experiment_names: tuple[str, ...] = ()  # OTLP by name: created when missing
    securable: tuple[str, str] | None = None  # (type, id) for the permission API
    admin_only: bool = False  # the object belongs to no experiment (a global masking rule): admins only
    not_found: str | None = None  # the 404 message for an unreadable experiment (default: no such experiment)


Target = Callable[[Request], Awaitable[Targets]]
# Renders a refusal (404/403) of a rule's check as the response to send, e.g. the web UI's HTML page.
ErrorPage = Callable[[Request, TracelakeError], Response]
# An after-hook sees the handler's 200 response body before the client does and returns the
# body to send: it grants the creator of an experiment MANAGE, or filters a listing.
AfterHook = Callable[[Any, Principal, Targets, bytes], bytes]


@dataclass(frozen=True)
class Rule:
    access: Access
    privilege: str | None = None
    target: Target | None = field(default=None, compare=False)
    after: AfterHook | None = field(default=None, compare=False)
    error_page: ErrorPage | None = field(default=None, compare=False)

    def describe(self) -> str:
        return f"{self.access.value} {self.privilege}" if self.privilege else self.access.value


PUBLIC = Rule(Access.PUBLIC)
AUTHENTICATED = Rule(Access.AUTHENTICATED)
ADMIN = Rule(Access.ADMIN)
SECURABLE = Rule(Access.SECURABLE, MANAGE)  # target set below


def experiment(privilege: str, target: Target, after: AfterHook | None = None) -> Rule:
    return Rule(Access.EXPERIMENT, privilege, target, after)


def ui_error_page(request: Request, exc: TracelakeError) -> Response:
    from tracelake.ui.views import error_page

    return error_page(request, exc)


def ui_page(privilege: str, target: Target) -> Rule:
    """A web UI page of an experiment: refused as the UI's own HTML error page, so an experiment
    the caller may not read looks exactly like a missing one."""
    return Rule(Access.EXPERIMENT, privilege, target, error_page=ui_error_page)


# -- targets: how a rule finds what the request acts on ------------------------------------------

def experiment_param(key: str = "experiment_id") -> Target:
    async def target(request: Request) -> Targets:
        return Targets(experiment_ids=(require_str(await params(request), key),))
    return target


def experiment_path(key: str = "experiment_id") -> Target:
    async def target(request: Request) -> Targets:
        return Targets(experiment_ids=(str(request.path_params[key]),))
    return target


def experiment_name_param(key: str = "experiment_name") -> Target:
    async def target(request: Request) -> Targets:
        return Targets(experiment_names=(require_str(await params(request), key),))
    return target


def experiment_list() -> Target:
    """``experiment_ids`` / ``locations`` of a trace search or count."""
    async def target(request: Request) -> Targets:
        from tracelake.server.routes.traces import _experiment_ids

        return Targets(experiment_ids=tuple(_experiment_ids(await params(request))))
    return target


def trace_path(key: str = "trace_id") -> Target:
    async def target(request: Request) -> Targets:
        from tracelake.server.routes.traces import _normalize_trace_id

        return Targets(trace_ids=(_normalize_trace_id(request.path_params[key]),))
    return target


def trace_param(key: str = "trace_id") -> Target:
    async def target(request: Request) -> Targets:
        from tracelake.server.routes.traces import _normalize_trace_id

        return Targets(trace_ids=(_normalize_trace_id(require_str(await params(request), key)),))
    return target


def trace_list(key: str = "trace_ids") -> Target:
    async def target(request: Request) -> Targets:
        from tracelake.server.routes.traces import _normalize_trace_id

        return Targets(trace_ids=tuple(_normalize_trace_id(t) for t in str_list(await params(request), key)))
    return target


def start_trace_location() -> Target:
    """StartTraceV3: ``trace.trace_info.trace_location.mlflow_experiment.experiment_id``."""
    async def target(request: Request) -> Targets:
        data = await params(request)
        trace = data.get("trace") or {}
        info = trace.get("trace_info") if isinstance(trace, dict) else None
        location = (info or {}).get("trace_location") if isinstance(info, dict) else None
        exp = (location or {}).get("mlflow_experiment") if isinstance(location, dict) else None
        experiment_id = str((exp or {}).get("experiment_id") or "") if isinstance(exp, dict) else ""
        if not experiment_id.isdigit():
            raise InvalidRequest("trace_info.trace_location.mlflow_experiment.experiment_id is required")
        return Targets(experiment_ids=(experiment_id,))
    return target


def otlp_experiments(decode: Callable[..., Any] | None = None) -> Target:
    """The experiments an OTLP export writes to, chosen exactly as the ingest route chooses them:
    the experiment header, else the experiment-name header, else each resource's attributes
    (the body is decoded only in that last case, by ``decode``: OTLP's ``decode_request`` unless
    another format's decoder with the same signature is given)."""
    async def target(request: Request) -> Targets:
        headers = request.headers
        by_id = headers.get("x-tracelake-experiment-id") or headers.get("x-mlflow-experiment-id")
        if by_id:
            return Targets(experiment_ids=(by_id,))
        by_name = headers.get("x-tracelake-experiment-name")
        if by_name:
            return Targets(new_experiment_names=(by_name,))
        from starlette.concurrency import run_in_threadpool

        from tracelake.ingest.pipeline import decode_request
        from tracelake.server.requests import read_body

        limit = request.app.state.ctx.settings.max_request_bytes
        body = await read_body(request, limit)
        decoded = await run_in_threadpool(
            decode or decode_request, body, headers.get("content-type"), headers.get("content-encoding"),
            max_bytes=limit, default_experiment_id="0", header_experiment_id=None)
        ids = tuple(dict.fromkeys(b.experiment_id for b in decoded.batches if b.experiment_id))
        names = tuple(dict.fromkeys(getattr(b, "experiment_name", None) for b in decoded.batches
                                    if not b.experiment_id and getattr(b, "experiment_name", None)))
        return Targets(experiment_ids=ids, new_experiment_names=names)
    return target


def _decode_native(*args: Any, **kwargs: Any) -> Any:
    from tracelake.ingest.native import decode_native_request

    return decode_native_request(*args, **kwargs)


def both(*parts: Target) -> Target:
    """Every experiment and trace the parts name (e.g. a page of a trace inside an experiment)."""
    async def target(request: Request) -> Targets:
        found = [await part(request) for part in parts]
        return Targets(experiment_ids=tuple(e for t in found for e in t.experiment_ids),
                       trace_ids=tuple(x for t in found for x in t.trace_ids))
    return target


def masking_rule_path(key: str = "rule_id") -> Target:
    """The experiment a masking rule belongs to; a global rule is for admins only."""
    async def target(request: Request) -> Targets:
        from starlette.concurrency import run_in_threadpool

        raw = str(request.path_params[key])
        if not raw.isdigit():
            raise InvalidRequest(f"rule id must be an integer, got {raw!r}")
        missing = f"No masking rule with id {int(raw)}"  # the store's wording
        rules = await run_in_threadpool(request.app.state.ctx.store.list_masking_rules, None)
        found = next((r for r in rules if int(r["rule_id"]) == int(raw)), None)
        if found is None:
            raise NotFound(missing)
        if found["experiment_id"] is None:
            return Targets(admin_only=True)
        return Targets(experiment_ids=(str(found["experiment_id"]),), not_found=missing)
    return target


def securable_param() -> Target:
    async def target(request: Request) -> Targets:
        data = await params(request)
        return Targets(securable=(require_str(data, "securable_type"), require_str(data, "securable_id")))
    return target


# -- after-hooks -------------------------------------------------------------------------------

def grant_creator(service: Any, principal: Principal, targets: Targets, body: bytes) -> bytes:
    """The principal that created an experiment gets MANAGE on it (before the client hears back)."""
    if targets.new_experiment_names:  # OTLP by name: grant only on experiments nobody holds yet
        for experiment_id in service.experiment_ids_by_name(targets.new_experiment_names).values():
            if not service.grants.list(SecurableType.EXPERIMENT.value, experiment_id):
                service.grant_creator(principal, experiment_id)
        return body
    try:
        experiment_id = orjson.loads(body).get("experiment_id")
    except (orjson.JSONDecodeError, AttributeError):
        return body
    if experiment_id is not None:
        service.grant_creator(principal, str(experiment_id))
    return body


def readable_only(list_key: str, id_key: str) -> AfterHook:
    """A listing of experiments keeps only those the caller may read (a page may then hold fewer
    items than asked for)."""
    def hook(service: Any, principal: Principal, targets: Targets, body: bytes) -> bytes:
        if principal.is_admin:
            return body
        data = orjson.loads(body)
        listed = data.get(list_key) or []
        allowed = set(service.readable(principal, [str(e.get(id_key)) for e in listed]))
        data[list_key] = [e for e in listed if str(e.get(id_key)) in allowed]
        return orjson.dumps(data)
    hook.__name__ = f"readable_only({list_key!r}, {id_key!r})"
    return hook


# -- the table ---------------------------------------------------------------------------------

def _api(*paths: str) -> list[str]:
    return [prefix + path for prefix in API_PREFIXES for path in paths]


def _mlflow(path: str, versions: Iterable[str] = ("2.0", "3.0")) -> list[str]:
    return [f"{prefix}/{v}/mlflow{path}" for prefix in API_PREFIXES for v in versions]


_EXP = "/2.0/mlflow/experiments"
# TODO(experiments route): filter in the handler instead, so pages keep max_results items.
LISTS_EXPERIMENTS = Rule(Access.AUTHENTICATED, after=readable_only("experiments", "experiment_id"))
_ASSESSMENT = "/traces/{trace_id}/assessments/{assessment_id}"
_TRACES_JSON = "/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/{trace_id}/artifacts/traces.json"
_TL = "/api/tracelake"

# (methods, paths, rule). A path is a route's path exactly as declared in its module.
TABLE: list[tuple[tuple[str, ...], list[str], Rule]] = [
    # health and versions: the mlflow client probes /version with credentials it may lack
    (("GET",), ["/health", "/version", f"{_TL}/version"], PUBLIC),
    # OTLP ingest: EDIT on every experiment written to (creating one by name makes you its MANAGEr)
    (("POST",), ["/v1/traces"], experiment(EDIT, otlp_experiments(), grant_creator)),
    (("POST",), [f"{_TL}/v1/spans"], experiment(EDIT, otlp_experiments(_decode_native), grant_creator)),
    # experiments
    (("POST",), _api(f"{_EXP}/create"), Rule(Access.AUTHENTICATED, after=grant_creator)),
    (("GET", "POST"), _api(f"{_EXP}/search"), LISTS_EXPERIMENTS),
    (("GET",), _api(f"{_EXP}/list"), LISTS_EXPERIMENTS),
    (("GET",), _api(f"{_EXP}/get"), experiment(READ, experiment_param())),
    (("GET",), _api(f"{_EXP}/get-by-name"), experiment(READ, experiment_name_param())),
    (("POST",), _api(f"{_EXP}/update", f"{_EXP}/set-experiment-tag"), experiment(EDIT, experiment_param())),
    (("POST",), _api(f"{_EXP}/delete", f"{_EXP}/restore"), experiment(MANAGE, experiment_param())),
    # traces: search filters to readable experiments in the handler; the rest name an experiment or trace
    (("GET", "POST"), _mlflow("/traces/search"), AUTHENTICATED),
    (("GET", "POST"), _mlflow("/traces/count"), experiment(READ, experiment_list())),
    (("GET",), _mlflow("/traces/get"), experiment(READ, trace_param())),
    (("GET",), _mlflow("/traces/batchGet"), experiment(READ, trace_list())),
    (("GET",), _mlflow("/traces/{trace_id}"), experiment(READ, trace_path())),
    (("POST",), _mlflow("/traces"), experiment(EDIT, start_trace_location())),
    (("PATCH", "DELETE"), _mlflow("/traces/{trace_id}/tags"), experiment(EDIT, trace_path())),
    (("POST",), _mlflow("/traces/delete-traces"), experiment(MANAGE, experiment_param())),
    # assessments
    (("GET",), _mlflow(_ASSESSMENT), experiment(READ, trace_path())),
    (("POST",), _mlflow("/traces/{trace_id}/assessments"), experiment(EDIT, trace_path())),
    (("PATCH", "DELETE"), _mlflow(_ASSESSMENT), experiment(EDIT, trace_path())),
    # the mlflow client's artifact fallback for spans
    (("GET",), _api(_TRACES_JSON), experiment(READ, experiment_path())),
    (("PUT",), _api(_TRACES_JSON), experiment(EDIT, experiment_path())),
    (("GET",), _api("/3.0/mlflow/server-info"), AUTHENTICATED),
    # server-side masking rules (server/routes/masking.py): global ones are the admins'; an
    # experiment's are visible to its readers and changed by its managers (deleting one by its
    # id needs MANAGE on the rule's experiment; a global rule, admin)
    (("GET", "POST"), [f"{_TL}/masking-rules"], ADMIN),
    (("DELETE",), [f"{_TL}/masking-rules/{{rule_id}}"], experiment(MANAGE, masking_rule_path())),
    (("GET",), [f"{_TL}/experiments/{{experiment_id}}/masking-rules"], experiment(READ, experiment_path())),
    (("POST",), [f"{_TL}/experiments/{{experiment_id}}/masking-rules"], experiment(MANAGE, experiment_path())),
    # users, groups, tokens, permissions (server/routes/auth.py)
    (("GET",), [f"{_TL}/users/me"], AUTHENTICATED),
    (("POST",), [f"{_TL}/users/me/password"], AUTHENTICATED),
    (("GET", "POST"), [f"{_TL}/users"], ADMIN),
    (("GET", "PATCH", "DELETE"), [f"{_TL}/users/{{username}}"], ADMIN),
    (("GET", "POST"), [f"{_TL}/groups"], ADMIN),
    (("DELETE",), [f"{_TL}/groups/{{name}}"], ADMIN),
    (("POST",), [f"{_TL}/groups/{{name}}/members"], ADMIN),
    (("DELETE",), [f"{_TL}/groups/{{name}}/members/{{username}}"], ADMIN),
    (("GET", "POST"), [f"{_TL}/tokens"], AUTHENTICATED),  # the caller's own tokens
    (("DELETE",), [f"{_TL}/tokens/{{token_id:int}}"], AUTHENTICATED),  # own (admins: any)
    (("GET", "POST", "DELETE"), [f"{_TL}/permissions"], Rule(Access.SECURABLE, MANAGE, securable_param())),
    # web UI pages (server/routes/ui.py): "/" lists only readable experiments (the handler filters
    # with tracelake.auth.readable_experiment_ids); an experiment's pages answer a caller who may
    # not read it with the UI's HTML 404 page, exactly as for a missing experiment
    (("GET",), ["/"], AUTHENTICATED),
    (("GET",), ["/static/{path:path}"], PUBLIC),
    (("GET",), ["/experiments/{experiment_id}", "/experiments/{experiment_id}/sessions",
                "/experiments/{experiment_id}/sessions/{session_id:path}",
                "/experiments/{experiment_id}/monitoring"], ui_page(READ, experiment_path())),
    (("GET",), ["/experiments/{experiment_id}/traces/{trace_id}"],
     ui_page(READ, both(experiment_path(), trace_path()))),
    # the UI's JSON (server/routes/ui_api.py): the experiments listing filters in the handler
    (("GET",), [f"{_TL}/experiments"], AUTHENTICATED),
    (("GET",), [f"{_TL}/experiments/{{experiment_id}}/{part}"
                for part in ("traces", "changes", "sessions", "metrics")], experiment(READ, experiment_path())),
    (("POST",), [f"{_TL}/traces/export"], experiment(READ, trace_list())),
    (("GET",), [f"{_TL}/traces/{{trace_id}}", f"{_TL}/traces/{{trace_id}}/spans",
                f"{_TL}/traces/{{trace_id}}/spans/{{span_id}}"], experiment(READ, trace_path())),
    # lake tables and SQL: SELECT grants on each table are checked in the handler (server/routes/lake.py)
    (("GET",), [f"{_TL}/lake/tables"], AUTHENTICATED),
    (("POST",), [f"{_TL}/lake/sql"], AUTHENTICATED),
    # sign-in pages and the admin/account pages
    (("GET", "POST"), ["/login"], PUBLIC),
    (("POST",), ["/logout"], AUTHENTICATED),
    (("GET", "POST"), ["/account"], AUTHENTICATED),
    (("GET", "POST"), ["/admin"], ADMIN),
]

# For a Mount (static files, sub-apps) declare its path with the method "*".
MOUNT = "*"


def _build(table: list[tuple[tuple[str, ...], list[str], Rule]]) -> dict[tuple[str, str], Rule]:
    rules: dict[tuple[str, str], Rule] = {}
    for methods, paths, rule in table:
        if rule.access in (Access.EXPERIMENT, Access.SECURABLE) and rule.target is None:
            raise ValueError(f"rule for {paths} needs a target")
        for path in paths:
            for method in methods:
                key = (path, method)
                if key in rules:
                    raise ValueError(f"route {method} {path} is declared twice")
                rules[key] = rule
    return rules


RULES: dict[tuple[str, str], Rule] = _build(TABLE)


def route_keys(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(path, method) of every route, as ``RULES`` keys them (HEAD is GET's; a Mount is ``*``)."""
    keys: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route):
            methods = sorted(route.methods or {"GET"})
            keys += [(route.path, m) for m in methods if not (m == "HEAD" and "GET" in methods)]
        elif isinstance(route, Mount):
            keys.append((route.path, MOUNT))
        else:  # WebSocketRoute, Host, ...: declare them under their path with "*"
            keys.append((getattr(route, "path", repr(route)), MOUNT))
    return keys


def rule_for(route: BaseRoute, method: str) -> Rule | None:
    path = getattr(route, "path", None)
    if path is None:
        return None
    if isinstance(route, Route):
        return RULES.get((path, "GET" if method == "HEAD" else method))
    return RULES.get((path, MOUNT))


__all__ = ["ADMIN", "AUTHENTICATED", "Access", "MOUNT", "PUBLIC", "RULES", "Rule", "TABLE", "Targets",
           "route_keys", "rule_for"]
