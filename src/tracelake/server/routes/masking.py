"""Server-side masking rules, applied at ingest before anything is stored.

``GET|POST /api/tracelake/masking-rules`` (global rules), ``GET|POST
/api/tracelake/experiments/{experiment_id}/masking-rules`` (one experiment's), and
``DELETE /api/tracelake/masking-rules/{rule_id}``.
"""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from tracelake.errors import InvalidRequest
from tracelake.ingest.masking import compile_rules
from tracelake.server.requests import json_body, opt_str, require_str
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import ctx


def _experiment_id(request: Request) -> str | None:
    experiment_id = request.path_params.get("experiment_id")
    if experiment_id is not None and not str(experiment_id).isdigit():
        raise InvalidRequest(f"experiment id must be a string of digits, got {experiment_id!r}")
    return experiment_id


async def list_rules(request: Request) -> JSONResponse:
    experiment_id = _experiment_id(request)
    rules = await run_in_threadpool(ctx(request).store.list_masking_rules, experiment_id)
    # Each list shows its own rules only: global rules are admin business, and an
    # experiment's readers do not see their patterns.
    rules = [r for r in rules if r["experiment_id"] == experiment_id]
    return JSONResponse({"rules": rules})


async def add_rule(request: Request) -> JSONResponse:
    experiment_id = _experiment_id(request)
    data = await json_body(request)
    rule = {"kind": require_str(data, "kind"), "pattern": require_str(data, "pattern"),
            "replacement": opt_str(data, "replacement") or "[MASKED]"}
    compile_rules([rule])  # a bad pattern is refused now, not at ingest
    c = ctx(request)
    if experiment_id is not None:
        await run_in_threadpool(c.store.get_experiment, experiment_id)  # 404 for an unknown experiment
    rule_id = await run_in_threadpool(c.store.add_masking_rule, rule["kind"], rule["pattern"], rule["replacement"],
                                      experiment_id)
    c.masking.invalidate()
    return JSONResponse({"rule_id": rule_id, "experiment_id": experiment_id, **rule})


async def delete_rule(request: Request) -> JSONResponse:
    raw = request.path_params["rule_id"]
    if not str(raw).isdigit():
        raise InvalidRequest(f"rule id must be an integer, got {raw!r}")
    c = ctx(request)
    await run_in_threadpool(c.store.delete_masking_rule, int(raw))
    c.masking.invalidate()
    return JSONResponse({})


routes = [
    Route("/api/tracelake/masking-rules", list_rules, methods=["GET"]),
    Route("/api/tracelake/masking-rules", add_rule, methods=["POST"]),
    Route("/api/tracelake/masking-rules/{rule_id}", delete_rule, methods=["DELETE"]),
    Route("/api/tracelake/experiments/{experiment_id}/masking-rules", list_rules, methods=["GET"]),
    Route("/api/tracelake/experiments/{experiment_id}/masking-rules", add_rule, methods=["POST"]),
]
