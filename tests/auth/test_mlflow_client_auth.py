"""The real ``mlflow`` client against the real server with auth on, in a subprocess configured
only through its environment: with a token, with basic auth, and with a wrong token."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from tests.auth.helpers import ADMIN_PASSWORD, USER_PASSWORD, auth_settings, basic
from tracelake.server import create_app

SCRIPT = Path(__file__).with_name("mlflow_script.py")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AuthServer:
    url: str
    app: Starlette


class _ThreadedUvicorn(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@pytest.fixture
def server(store_uri: str, tmp_path: Path) -> Iterator[AuthServer]:
    app = create_app(auth_settings(store_uri, tmp_path))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = _ThreadedUvicorn(uvicorn.Config(app, log_config=None, log_level="warning", access_log=False))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started, "the server did not start"
    try:
        yield AuthServer(f"http://127.0.0.1:{port}", app)
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()


def _user_with_token(server: AuthServer, username: str) -> str:
    admin = basic("admin", ADMIN_PASSWORD)
    r = httpx.post(f"{server.url}/api/tracelake/users", headers=admin,
                   json={"username": username, "password": USER_PASSWORD})
    assert r.status_code == 200, r.text
    r = httpx.post(f"{server.url}/api/tracelake/tokens", headers=admin, json={"name": "client", "username": username})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _run_client(server: AuthServer, credentials: dict[str, str], *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": server.url, "MLFLOW_DISABLE_TELEMETRY": "true",
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
                "PYTHONPATH": str(ROOT), **credentials})
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_logged_and_found(server: AuthServer, result: dict) -> None:
    assert result["found"] == [result["trace_id"]]
    assert result["spans"] == ["agent", "tool"]
    # the spans came over OTLP (/version answered without credentials), so the store has them itself
    trace = server.app.state.ctx.store.get_trace(result["trace_id"])
    assert sorted(s.name for s in trace.spans) == ["agent", "tool"]


def test_mlflow_client_with_a_token(server: AuthServer) -> None:
    token = _user_with_token(server, "alice")
    result = _run_client(server, {"MLFLOW_TRACKING_TOKEN": token}, "log", "alice-app")
    _assert_logged_and_found(server, result)
    # alice created the experiment, so she manages it; bob sees nothing of it
    bob = _user_with_token(server, "bob")
    r = httpx.post(f"{server.url}/api/3.0/mlflow/traces/search", headers={"Authorization": f"Bearer {bob}"},
                   json={"locations": [{"type": "MLFLOW_EXPERIMENT",
                                        "mlflow_experiment": {"experiment_id": result["experiment_id"]}}]})
    assert r.status_code == 200 and r.json()["traces"] == []


def test_mlflow_client_with_basic_auth(server: AuthServer) -> None:
    _user_with_token(server, "carol")
    result = _run_client(server, {"MLFLOW_TRACKING_USERNAME": "carol", "MLFLOW_TRACKING_PASSWORD": USER_PASSWORD},
                         "log", "carol-app")
    _assert_logged_and_found(server, result)


@pytest.mark.parametrize("credentials", [
    {"MLFLOW_TRACKING_TOKEN": "tlk_wrong-token"},
    {"MLFLOW_TRACKING_USERNAME": "carol", "MLFLOW_TRACKING_PASSWORD": "wrong-password"},
    {},
], ids=["wrong-token", "wrong-password", "none"])
def test_mlflow_client_with_wrong_credentials_gets_401(server: AuthServer, credentials: dict[str, str]) -> None:
    _user_with_token(server, "carol")
    assert _run_client(server, credentials, "probe") == {"error_code": "UNAUTHENTICATED"}
