"""Helpers to read request parameters with clear 400s (never a KeyError turned 500)."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from tracelake.errors import InvalidRequest, PayloadTooLarge

MAX_JSON_BODY = 16 * 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing early (413) when it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"request body of {declared} bytes is over the limit of {limit} bytes")
        except ValueError:
            raise InvalidRequest("Content-Length header is not an integer") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BODY)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


async def params(request: Request) -> dict[str, Any]:
    """Query parameters merged with a JSON body (MLflow clients use both)."""
    merged: dict[str, Any] = {}
    for key in request.query_params.keys():
        values = request.query_params.getlist(key)
        merged[key] = values if len(values) > 1 else values[0]
    if request.method in ("POST", "PATCH", "PUT", "DELETE"):
        merged.update(await json_body(request))
    return merged


def require_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise InvalidRequest(f"missing required parameter '{key}'")
    if not isinstance(value, (str, int)):
        raise InvalidRequest(f"parameter '{key}' must be a string")
    return str(value)


def opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)):
        raise InvalidRequest(f"parameter '{key}' must be a string")
    return str(value)


def opt_int(data: dict[str, Any], key: str, default: int | None = None, *, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"parameter '{key}' must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise InvalidRequest(f"parameter '{key}' must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InvalidRequest(f"parameter '{key}' must be <= {maximum}, got {number}")
    return number


def str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    raise InvalidRequest(f"parameter '{key}' must be a list of strings")
