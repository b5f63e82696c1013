"""A small HTTP service run as a separate process by ``test_traceparent_two_processes``.

    python traced_service.py otel|tracelake TRACKING_URL EXPERIMENT_ID

``GET /stock`` continues the caller's trace from its ``traceparent`` header, makes a SERVER span
with a child, exports them (before answering), and replies with the ids it used. The mode says
which SDK traces the service: the OpenTelemetry SDK (OTLP/protobuf exporter) or tracelake's. The
first line on stdout is the port it listens on.
"""
from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable


def otel_handler(url: str, experiment_id: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create({"service.name": "inventory"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"x-mlflow-experiment-id": experiment_id})))
    tracer = provider.get_tracer("inventory")
    propagator = TraceContextTextMapPropagator()

    def handle(headers: dict[str, str]) -> dict[str, Any]:
        context = propagator.extract(carrier=headers)
        with tracer.start_as_current_span("GET /stock", context=context, kind=SpanKind.SERVER) as span:
            with tracer.start_as_current_span("db.lookup", attributes={"db.system": "sqlite"}):
                pass
            ids = span.get_span_context()
        # SimpleSpanProcessor exported both spans as they ended.
        return {"trace_id": f"{ids.trace_id:032x}", "span_id": f"{ids.span_id:016x}", "stock": 7}

    return handle


def tracelake_handler(url: str, experiment_id: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    import tracelake

    tracelake.configure(tracking_uri=url, experiment_id=experiment_id, service_name="inventory")

    @tracelake.trace(name="db.lookup", span_type=tracelake.SpanType.RETRIEVER)
    def lookup(item: str) -> int:
        return 7

    def handle(headers: dict[str, str]) -> dict[str, Any]:
        with tracelake.continue_trace(headers):
            with tracelake.start_span("GET /stock", span_type=tracelake.SpanType.CHAIN) as span:
                stock = lookup("widget")
                span.set_outputs({"stock": stock})
        tracelake.flush()
        return {"trace_id": span.otel_trace_id, "span_id": span.span_id, "stock": stock}

    return handle


def main() -> None:
    mode, url, experiment_id = sys.argv[1:4]
    handle = (otel_handler if mode == "otel" else tracelake_handler)(url, experiment_id)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            reply = json.dumps(handle({k.lower(): v for k, v in self.headers.items()})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
