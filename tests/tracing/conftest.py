"""Fixtures: a clean tracelake configuration per test, exporting to memory."""
from __future__ import annotations

import gzip
import http.server
import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

import tracelake
from tracelake.tracing._log import reset_rate_limits
from tracelake.tracing.exporters.memory import InMemorySpanExporter


@pytest.fixture(autouse=True)
def _clean_tracelake(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("TRACELAKE_"):
            monkeypatch.delenv(name)
    reset_rate_limits()
    yield
    tracelake.shutdown()
    monkeypatch.undo()  # the test's env changes must not reach the reset below
    for name in list(os.environ):
        if name.startswith("TRACELAKE_"):
            monkeypatch.delenv(name)
    tracelake.configure(disabled=False)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    exp = InMemorySpanExporter()
    tracelake.configure(exporter=exp, schedule_delay_s=0.05)
    return exp


@pytest.fixture
def finished(exporter: InMemorySpanExporter) -> Callable[[], dict[str, tracelake.Span]]:
    """``finished()``: flush, then the exported spans by name (names are unique within a test)."""
    def get() -> dict[str, tracelake.Span]:
        assert tracelake.flush(10)
        spans = exporter.get_finished_spans()
        by_name = {s.name: s for s in spans}
        assert len(by_name) == len(spans), "span names must be unique in a test"
        return by_name
    return get


class Received:
    """One request the collector got."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes, client_port: int) -> None:
        self.path = path
        self.headers = headers
        self.raw_body = body
        self.body = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
        self.client_port = client_port


class Collector:
    """A local HTTP server recording POSTs; ``replies`` scripts the next answers (default 200);
    POSTs to a path in ``missing`` are answered 404 before any scripted reply is used."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.missing: set[str] = set()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                collector.requests.append(Received(self.path, headers, body, self.client_address[1]))
                if self.path in collector.missing:
                    status, extra = 404, {}
                else:
                    status, extra = collector.replies.pop(0) if collector.replies else (200, {})
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
