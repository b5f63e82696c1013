"""Compatibility fixtures: the real server on a real socket, and the real mlflow client aimed at it.

``live_server`` serves ``create_app(Settings(...))`` with uvicorn on 127.0.0.1 (a free port, in a
background thread) over the ``store_uri`` database, so every test using it runs on SQLite and on
PostgreSQL. ``mlflow_client`` points the process-wide mlflow client at that server and puts
mlflow's global state back afterwards (tracking URI, active experiment, tracer provider).
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from tracelake.server import create_app
from tracelake.settings import Settings
from tracelake.store.base import Store

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


@dataclass
class LiveServer:
    url: str
    app: Starlette

    @property
    def store(self) -> Store:
        """The server's own store, for checks of fields the MLflow API does not show (model, tokens)."""
        return self.app.state.ctx.store

    def create_experiment(self, name: str) -> str:
        """Create an experiment through the REST API and return its id."""
        resp = httpx.post(f"{self.url}/api/2.0/mlflow/experiments/create", json={"name": name})
        resp.raise_for_status()
        return resp.json()["experiment_id"]


@pytest.fixture
def live_server(store_uri: str, tmp_path) -> Iterator[LiveServer]:
    """The real ASGI app served over HTTP on 127.0.0.1 (a fresh, empty database per test)."""
    settings = Settings(store=store_uri, artifacts=str(tmp_path / "artifacts"), lake=str(tmp_path / "lake"))
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no race for the port
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)  # off the main thread, uvicorn leaves signal handling alone
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="tracelake-live-server",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        sock.close()
        pytest.fail("the tracelake server did not start (see the log above)")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        sock.close()


@dataclass
class MlflowSession:
    """The mlflow client, set up against ``server``."""

    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url)


def _reset_mlflow() -> None:
    import mlflow
    from mlflow.tracking import fluent

    fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)  # also resets mlflow's tracer provider (and its exporter)


def _mlflow_env(monkeypatch: pytest.MonkeyPatch, async_logging: bool) -> None:
    # Never phone home; fail fast instead of retrying for minutes if the server misbehaves.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true" if async_logging else "false")
    # set_tracking_uri / set_experiment write these; monkeypatch restores them afterwards.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


@pytest.fixture
def mlflow_client(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowSession]:
    """mlflow aimed at ``live_server`` with synchronous trace export (each span sent as it ends)."""
    import mlflow

    _mlflow_env(monkeypatch, async_logging=False)
    _reset_mlflow()
    mlflow.set_tracking_uri(live_server.url)
    try:
        yield MlflowSession(live_server)
    finally:
        _reset_mlflow()


@pytest.fixture
def mlflow_async_client(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowSession]:
    """mlflow aimed at ``live_server`` in its default mode: spans batched and sent by a queue."""
    import mlflow

    _mlflow_env(monkeypatch, async_logging=True)
    _reset_mlflow()
    mlflow.set_tracking_uri(live_server.url)
    try:
        yield MlflowSession(live_server)
    finally:
        mlflow.flush_trace_async_logging(terminate=True)
        _reset_mlflow()


@dataclass
class SentTraces:
    """Traces exactly as the mlflow exporter handed them to its StartTraceV3 step."""

    by_id: dict[str, Any] = field(default_factory=dict)

    def last(self) -> Any:
        return list(self.by_id.values())[-1]


@pytest.fixture
def sent_traces(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentTraces]:
    """Record each trace the mlflow exporter sends (the reference for read-back comparisons)."""
    from mlflow.tracing.export.mlflow_v3 import MlflowV3SpanExporter

    sent = SentTraces()
    original = MlflowV3SpanExporter._log_trace

    def recording(self: Any, trace: Any, *args: Any, **kwargs: Any) -> Any:
        sent.by_id[trace.info.trace_id] = trace
        return original(self, trace, *args, **kwargs)

    monkeypatch.setattr(MlflowV3SpanExporter, "_log_trace", recording)
    yield sent


@pytest.fixture
def mlflow_reader(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An ``MlflowClient`` bound to ``live_server`` (no global mlflow state): reads traces back."""
    from mlflow import MlflowClient

    _mlflow_env(monkeypatch, async_logging=False)
    return MlflowClient(tracking_uri=live_server.url)
