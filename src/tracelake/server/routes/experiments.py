"""Experiments, MLflow REST API 2.0 paths: create, get, get-by-name, search, update, delete, restore."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tracelake.errors import InvalidRequest, NotFound
from tracelake.server.mlflow_json import experiment_json
from tracelake.server.requests import opt_int, opt_str, params, require_str, str_list
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import api_routes, ctx

_VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}


async def create_experiment(request: Request) -> JSONResponse:
    data = await params(request)
    name = require_str(data, "name")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) and "key" in t for t in tags):
        raise InvalidRequest("'tags' must be a list of {key, value} objects")
    c = ctx(request)
    experiment_id = await run_in_threadpool(
        c.store.create_experiment, name, opt_str(data, "artifact_location"),
        {str(t["key"]): str(t.get("value", "")) for t in tags},
    )
    c.experiments.invalidate()
    return JSONResponse({"experiment_id": experiment_id})


async def get_experiment(request: Request) -> JSONResponse:
    data = await params(request)
    experiment = await run_in_threadpool(ctx(request).store.get_experiment, require_str(data, "experiment_id"))
    return JSONResponse({"experiment": experiment_json(experiment)})


async def get_experiment_by_name(request: Request) -> JSONResponse:
    data = await params(request)
    name = require_str(data, "experiment_name")
    experiment = await run_in_threadpool(ctx(request).store.get_experiment_by_name, name)
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return JSONResponse({"experiment": experiment_json(experiment)})


async def search_experiments(request: Request) -> JSONResponse:
    data = await params(request)
    view_type = opt_str(data, "view_type") or "ACTIVE_ONLY"
    if view_type not in _VIEW_TYPES:
        raise InvalidRequest(f"view_type must be one of {sorted(_VIEW_TYPES)}, got {view_type!r}")
    page = await run_in_threadpool(
        ctx(request).store.search_experiments, view_type,
        opt_int(data, "max_results", 1000, minimum=1, maximum=50_000),
        opt_str(data, "page_token"), opt_str(data, "filter"), str_list(data, "order_by") or None,
    )
    out: dict = {"experiments": [experiment_json(e) for e in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return JSONResponse(out)


async def update_experiment(request: Request) -> JSONResponse:
    data = await params(request)
    c = ctx(request)
    new_name = opt_str(data, "new_name")
    if new_name:
        await run_in_threadpool(c.store.rename_experiment, require_str(data, "experiment_id"), new_name)
    c.experiments.invalidate()
    return JSONResponse({})


async def delete_experiment(request: Request) -> JSONResponse:
    data = await params(request)
    c = ctx(request)
    await run_in_threadpool(c.store.delete_experiment, require_str(data, "experiment_id"))
    c.experiments.invalidate()
    return JSONResponse({})


async def restore_experiment(request: Request) -> JSONResponse:
    data = await params(request)
    c = ctx(request)
    await run_in_threadpool(c.store.restore_experiment, require_str(data, "experiment_id"))
    c.experiments.invalidate()
    return JSONResponse({})


async def set_experiment_tag(request: Request) -> JSONResponse:
    data = await params(request)
    value = data.get("value")
    await run_in_threadpool(ctx(request).store.set_experiment_tag, require_str(data, "experiment_id"),
                            require_str(data, "key"), "" if value is None else str(value))
    return JSONResponse({})


_P = "/2.0/mlflow/experiments"
routes = [
    *api_routes(f"{_P}/create", create_experiment, ["POST"]),
    *api_routes(f"{_P}/get", get_experiment, ["GET"]),
    *api_routes(f"{_P}/get-by-name", get_experiment_by_name, ["GET"]),
    *api_routes(f"{_P}/search", search_experiments, ["GET", "POST"]),
    *api_routes(f"{_P}/list", search_experiments, ["GET"]),
    *api_routes(f"{_P}/update", update_experiment, ["POST"]),
    *api_routes(f"{_P}/delete", delete_experiment, ["POST"]),
    *api_routes(f"{_P}/restore", restore_experiment, ["POST"]),
    *api_routes(f"{_P}/set-experiment-tag", set_experiment_tag, ["POST"]),
]
