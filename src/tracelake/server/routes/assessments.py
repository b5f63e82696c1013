"""Assessments on traces (MLflow REST API v3 paths): create, get, update, delete."""
from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from tracelake.errors import InvalidRequest
from tracelake.server.mlflow_json import assessment_from_json, assessment_json
from tracelake.server.requests import params
from tracelake.server.responses import JSONResponse
from tracelake.server.routes._util import api_routes, ctx
from tracelake.server.routes.traces import _normalize_trace_id


async def create_assessment(request: Request) -> JSONResponse:
    data = await params(request)
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    assessment = assessment_from_json(data.get("assessment") or {}, trace_id)
    now = int(time.time() * 1000)
    assessment.assessment_id = assessment.assessment_id or "a-" + uuid.uuid4().hex
    assessment.create_time = assessment.create_time or now
    assessment.last_update_time = assessment.last_update_time or now
    created = await run_in_threadpool(ctx(request).store.create_assessment, assessment)
    return JSONResponse({"assessment": assessment_json(created)})


async def get_assessment(request: Request) -> JSONResponse:
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    found = await run_in_threadpool(ctx(request).store.get_assessment, trace_id, request.path_params["assessment_id"])
    return JSONResponse({"assessment": assessment_json(found)})


def _snake(name: str) -> str:
    """``assessmentName`` (the mlflow client's FieldMask) → ``assessment_name``."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _value(body: dict[str, Any]) -> Any:
    if "value" in body or "serialized_value" not in body:
        return body.get("value")
    import orjson

    serialized = body.get("serialized_value") or {}
    try:
        return orjson.loads(serialized.get("value", "null"))
    except (orjson.JSONDecodeError, AttributeError):
        raise InvalidRequest("serialized_value.value must be JSON text") from None


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    """Fields to change, from MLflow's UpdateAssessment (assessment + update_mask)."""
    body = data.get("assessment") or {}
    if not isinstance(body, dict):
        raise InvalidRequest("'assessment' must be an object")
    mask = data.get("update_mask")
    if isinstance(mask, dict):  # FieldMask as an object: {"paths": [...]}
        mask = ",".join(mask.get("paths") or [])
    paths = [_snake(p.strip()) for p in mask.split(",")] if isinstance(mask, str) and mask else list(body.keys())
    changes: dict[str, Any] = {}
    for path in paths:
        if path in ("assessment_name", "name"):
            changes["name"] = body.get("assessment_name") or body.get("name")
        elif path in ("feedback", "expectation", "feedback.value", "expectation.value"):
            kind = path.split(".")[0]
            changes["value"] = _value(body.get(kind) or {})
        elif path == "rationale":
            changes["rationale"] = body.get("rationale")
        elif path == "metadata":
            changes["metadata"] = {str(k): str(v) for k, v in (body.get("metadata") or {}).items()}
        elif path == "valid":
            changes["valid"] = bool(body.get("valid"))
        elif path in ("assessment_id", "trace_id", "source", "create_time", "last_update_time", "span_id"):
            continue
        else:
            raise InvalidRequest(f"cannot update assessment field {path!r}")
    return changes  # the store bumps last_update_time itself


async def update_assessment(request: Request) -> JSONResponse:
    data = await params(request)
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    updated = await run_in_threadpool(ctx(request).store.update_assessment, trace_id,
                                      request.path_params["assessment_id"], _changes(data))
    return JSONResponse({"assessment": assessment_json(updated)})


async def delete_assessment(request: Request) -> JSONResponse:
    trace_id = _normalize_trace_id(request.path_params["trace_id"])
    await run_in_threadpool(ctx(request).store.delete_assessment, trace_id, request.path_params["assessment_id"])
    return JSONResponse({})


routes = []
for _v in ("2.0", "3.0"):
    _P = f"/{_v}/mlflow/traces/{{trace_id}}/assessments"
    routes += [
        *api_routes(_P, create_assessment, ["POST"]),
        *api_routes(f"{_P}/{{assessment_id}}", get_assessment, ["GET"]),
        *api_routes(f"{_P}/{{assessment_id}}", update_assessment, ["PATCH"]),
        *api_routes(f"{_P}/{{assessment_id}}", delete_assessment, ["DELETE"]),
    ]
