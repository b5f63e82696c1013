"""Fast JSON responses (orjson) and error bodies in MLflow's shape."""
from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from tracelake.errors import Overloaded, RateLimited, TracelakeError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(exc: TracelakeError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, (RateLimited, Overloaded)):
        headers["Retry-After"] = str(max(1, int(round(exc.retry_after))))
    return JSONResponse({"error_code": exc.error_code, "message": exc.message}, status_code=exc.status,
                        headers=headers)
