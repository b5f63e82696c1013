"""Build OTLP requests with the real OpenTelemetry SDK and its encoder."""
from __future__ import annotations

import json
from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def record(fn: Callable, resource: dict | None = None) -> list[ReadableSpan]:
    """Run ``fn(tracer)`` under a fresh TracerProvider and return the finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fn(provider.get_tracer("tests"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def protobuf_body(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def mlflow_span_attrs(span_type: str, inputs, outputs) -> dict[str, str]:
    return {"mlflow.spanType": json.dumps(span_type), "mlflow.spanInputs": json.dumps(inputs),
            "mlflow.spanOutputs": json.dumps(outputs)}


def five_span_trace(tracer, name: str = "agent", error: bool = False) -> None:
    """A root AGENT span with an LLM, a RETRIEVER, a TOOL and a nested LLM call."""
    with tracer.start_as_current_span(name, attributes=mlflow_span_attrs("AGENT", {"q": "hi"}, "answer")) as root:
        with tracer.start_as_current_span("retrieve", attributes=mlflow_span_attrs("RETRIEVER", {"q": "hi"}, ["d1"])):
            pass
        with tracer.start_as_current_span("llm", attributes={
                **mlflow_span_attrs("LLM", {"messages": [{"role": "user", "content": "hi"}]}, "hello"),
                "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})}):
            pass
        with tracer.start_as_current_span("tool", attributes=mlflow_span_attrs("TOOL", {"x": 1}, 2)):
            with tracer.start_as_current_span("inner-llm", attributes={
                    **mlflow_span_attrs("LLM", {"p": "x"}, "y"),
                    "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 3, "output_tokens": 2,
                                                          "total_tokens": 5})}):
                pass
        if error:
            from opentelemetry.trace import Status, StatusCode

            root.set_status(Status(StatusCode.ERROR, "boom"))
