"""W3C traceparent: one request crossing a tracelake service and an OpenTelemetry service is one trace."""
from __future__ import annotations

import http.server
import threading
import urllib.request

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter as OtelMemory
from opentelemetry.trace import set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import tracelake
from tracelake.tracing.propagation import parse_traceparent

PROPAGATOR = TraceContextTextMapPropagator()


@pytest.fixture
def otel():
    exporter = OtelMemory()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("other-service"), exporter
    provider.shutdown()


def test_inject_writes_the_current_span_as_traceparent():
    with tracelake.start_span("client") as span:
        headers = tracelake.inject({"accept": "*/*"})
    assert headers["traceparent"] == f"00-{span.otel_trace_id}-{span.span_id}-01"
    assert headers["accept"] == "*/*"
    assert tracelake.inject({}) == {}


@pytest.mark.parametrize("header", [
    None, "", "garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "00-" + "1" * 32 + "-" + "0" * 16 + "-01",
    "ff-" + "1" * 32 + "-" + "1" * 16 + "-01", "00-" + "A" * 32 + "-" + "1" * 16 + "-01",
    "00-" + "1" * 32 + "-" + "1" * 16 + "-01-extra",
])
def test_invalid_traceparent_is_ignored(header):
    assert parse_traceparent(header) is None


def test_future_versions_with_extra_fields_are_accepted():
    parent = parse_traceparent("01-" + "a" * 32 + "-" + "b" * 16 + "-00-whatever")
    assert parent is not None and parent.sampled is False


def test_extract_is_case_insensitive_and_accepts_lists_and_bytes():
    value = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    for carrier in ({"Traceparent": value}, {"traceparent": [value]}, {"TRACEPARENT": value.encode()}):
        parent = tracelake.extract(carrier)
        assert parent is not None and f"{parent.trace_id:032x}" == "a" * 32 and parent.sampled


def test_tracelake_caller_and_opentelemetry_callee_share_one_trace(otel):
    tracer, otel_spans = otel

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the "other service", instrumented with the OTel SDK
            ctx = PROPAGATOR.extract({k.lower(): v for k, v in self.headers.items()})
            with tracer.start_as_current_span("otel-handler", context=ctx):
                pass
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        with tracelake.start_span("tracelake-client") as client:
            request = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/",
                                             headers=tracelake.inject({}))
            urllib.request.urlopen(request, timeout=10).read()
    finally:
        thread.join(10)
        server.server_close()
    (remote,) = otel_spans.get_finished_spans()
    assert f"{remote.context.trace_id:032x}" == client.otel_trace_id
    assert f"{remote.parent.span_id:016x}" == client.span_id


def test_opentelemetry_caller_and_tracelake_callee_share_one_trace(otel, exporter):
    tracer, _ = otel
    with tracer.start_as_current_span("otel-client") as caller:
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, context=set_span_in_context(caller))

    @tracelake.trace
    def handle():
        with tracelake.start_span("db"):
            pass

    with tracelake.continue_trace(headers) as parent:
        assert parent is not None
        handle()
    assert tracelake.flush(10)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["handle"].otel_trace_id == f"{caller.context.trace_id:032x}"
    assert spans["handle"].parent_id == f"{caller.context.span_id:016x}"
    assert spans["handle"].is_root  # the local root carries the trace-level attributes
    assert spans["db"].parent_id == spans["handle"].span_id


def test_unsampled_remote_parent_is_respected(exporter):
    headers = {"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-00"}
    with tracelake.continue_trace(headers):
        with tracelake.start_span("not-sampled") as span:
            assert tracelake.inject({})["traceparent"] == f"00-{'c' * 32}-{span.span_id}-00"
    assert tracelake.flush(10)
    assert exporter.get_finished_spans() == []


def test_continue_trace_without_header_starts_a_new_trace(exporter):
    with tracelake.continue_trace({}) as parent:
        assert parent is None
        with tracelake.start_span("fresh") as span:
            assert span.parent_id is None


def test_start_span_accepts_an_explicit_remote_parent():
    parent = tracelake.extract({"traceparent": "00-" + "e" * 32 + "-" + "f" * 16 + "-01"})
    with tracelake.start_span("child", parent=parent) as span:
        assert span.trace_id == "tr-" + "e" * 32
        assert span.parent_id == "f" * 16
