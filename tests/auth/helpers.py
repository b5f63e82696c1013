"""Builders shared by the auth tests: settings with auth on, OTLP JSON bodies, credentials."""
from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import orjson

from tracelake.settings import Settings

ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"


def auth_settings(store_uri: str, tmp_path: Path, **changes: object) -> Settings:
    return Settings(store=store_uri, artifacts=str(tmp_path / "artifacts"), lake=str(tmp_path / "lake"),
                    auth=True, admin_password=ADMIN_PASSWORD).replace(**changes)


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_trace_hex() -> str:
    return secrets.token_hex(16)


def otlp_json(trace_hex: str, name: str = "root", resource: dict[str, str] | None = None) -> bytes:
    """One finished root span as an OTLP/JSON export request."""
    now = time.time_ns()
    return orjson.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": {"stringValue": v}}
                                    for k, v in (resource or {"service.name": "t"}).items()]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": [{
            "traceId": trace_hex, "spanId": secrets.token_hex(8), "name": name, "kind": 1,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now), "status": {"code": 1},
        }]}],
    }]})
