"""UI tests: the real server (uvicorn, SQLite) in a thread, real headless Chromium (Debian's),
traces made with the real OpenTelemetry SDK and sent to ``/v1/traces``.

Each test gets its own experiment, so tests do not see each other's traces. Every page
a test opens is screenshotted to ``test-output/screenshots/`` by the test itself.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page

from tracelake.server import create_app
from tracelake.settings import Settings

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "accept_downloads": True}


@dataclass
class Server:
    url: str
    http: httpx.Client
    app: object

    def create_experiment(self, prefix: str = "ui") -> str:
        r = self.http.post("/api/2.0/mlflow/experiments/create", json={"name": f"{prefix}-{uuid.uuid4().hex[:8]}"})
        r.raise_for_status()
        return r.json()["experiment_id"]

    def send(self, experiment_id: str, body: bytes) -> None:
        r = self.http.post("/v1/traces", content=body, headers={
            "content-type": "application/x-protobuf", "x-tracelake-experiment-id": experiment_id})
        r.raise_for_status()

    def traces(self, experiment_id: str, filter_string: str | None = None) -> list[dict]:
        r = self.http.get(f"/api/tracelake/experiments/{experiment_id}/traces",
                          params={"filter": filter_string or "", "max_results": 500})
        r.raise_for_status()
        return r.json()["traces"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ui-server")
    settings = Settings(store=f"sqlite:///{root}/tracelake.db", artifacts=str(root / "artifacts"),
                        lake=str(root / "lake"))
    app = create_app(settings)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="ui-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    with httpx.Client(base_url=url, timeout=60) as http:
        yield Server(url, http, app)
    srv.should_exit = True
    thread.join(timeout=30)


class Problems:
    """Script errors and console errors (CSP violations, failed requests) seen by a page."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [p for p in self.seen if not any(a in p for a in self.allowed)]


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def ui(page: Page, server: Server, problems: Problems) -> Iterator[Page]:
    """A page that fails the test on any script error, CSP violation or failed request."""
    page.on("pageerror", lambda exc: problems.seen.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.seen.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.set_default_timeout(15_000)
    yield page
    assert not problems.unexpected(), "\n".join(problems.unexpected())


def shot(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
