"""One request crossing two processes, traced by two SDKs and joined by W3C ``traceparent``.

The service side runs in its own process (``traced_service.py``); this process is the caller.
Both directions: tracelake SDK → OpenTelemetry SDK service, and OpenTelemetry SDK → tracelake service.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tracelake
from tests.compat.conftest import LiveServer
from tests.compat.otel_helpers import exporter_for, provider_for, span_hex_id

SERVICE = Path(__file__).with_name("traced_service.py")


@contextmanager
def traced_service(mode: str, live_server: LiveServer, experiment_id: str) -> Iterator[str]:
    """Start the service process; yield its ``/stock`` URL."""
    proc = subprocess.Popen([sys.executable, str(SERVICE), mode, live_server.url, experiment_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"service did not start: {line!r}\n{err}")
        yield f"http://127.0.0.1:{line.strip()}/stock"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _tree(mlflow_reader, trace_id: str) -> dict[str, tuple[str, str | None]]:
    """span name → (span id, parent id) of the stored trace."""
    return {s.name: (s.span_id, s.parent_id) for s in mlflow_reader.get_trace(trace_id).data.spans}


def test_tracelake_caller_and_otel_service_make_one_trace(live_server: LiveServer, mlflow_reader) -> None:
    experiment_id = live_server.create_experiment("two-processes")
    with traced_service("otel", live_server, experiment_id) as url:
        tracelake.configure(tracking_uri=live_server.url, experiment_id=experiment_id, service_name="shop")
        try:
            with tracelake.start_span("checkout", span_type=tracelake.SpanType.AGENT) as span:
                headers = tracelake.inject({})
                reply = httpx.get(url, headers=headers).json()
                span.set_outputs(reply)
            assert tracelake.flush()
        finally:
            tracelake.shutdown()

    assert headers["traceparent"] == f"00-{span.otel_trace_id}-{span.span_id}-01"
    assert reply["trace_id"] == span.otel_trace_id  # the service joined the caller's trace
    tree = _tree(mlflow_reader, span.trace_id)
    assert tree == {
        "checkout": (span.span_id, None),
        "GET /stock": (reply["span_id"], span.span_id),
        "db.lookup": (tree["db.lookup"][0], reply["span_id"]),
    }
    found = mlflow_reader.search_traces(locations=[experiment_id])
    assert [t.info.trace_id for t in found] == [span.trace_id]
    assert found[0].info.state == "OK"


def test_otel_caller_and_tracelake_service_make_one_trace(live_server: LiveServer, mlflow_reader) -> None:
    experiment_id = live_server.create_experiment("two-processes-reverse")
    provider, sent = provider_for(exporter_for("protobuf", live_server.url, {"x-mlflow-experiment-id": experiment_id}))
    tracer = provider.get_tracer("shop")
    with traced_service("tracelake", live_server, experiment_id) as url:
        with tracer.start_as_current_span("checkout"):
            headers: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(headers)
            reply = httpx.get(url, headers=headers).json()
    provider.shutdown()

    (root,) = sent.get_finished_spans()
    trace_hex = f"{root.context.trace_id:032x}"
    assert reply["trace_id"] == trace_hex
    tree = _tree(mlflow_reader, "tr-" + trace_hex)
    assert tree == {
        "checkout": (span_hex_id(root), None),
        "GET /stock": (reply["span_id"], span_hex_id(root)),
        "db.lookup": (tree["db.lookup"][0], reply["span_id"]),
    }
    got = {s.name: s for s in mlflow_reader.get_trace("tr-" + trace_hex).data.spans}
    assert got["db.lookup"].span_type == "RETRIEVER"
    assert got["GET /stock"].outputs == {"stock": 7}
