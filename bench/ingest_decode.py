"""Decode + normalise cost per span for OTLP protobuf bodies made by the real OTel encoder.

    python tests/ingest/bench_ingest.py [traces]

Builds ``traces`` 5-span traces (MLflow-style and OpenInference-style attributes, ~500 bytes
of inputs/outputs per span), encodes them in 512-span requests as the OTel batch exporter
does, and reports CPU µs per span for ``decode_request`` (best of 5 runs), next to a naive
peer measured in the same run: the stock ``ExportTraceServiceRequest`` read with
``MessageToDict`` (what most OTLP receivers do). Not a test.
"""
from __future__ import annotations

import sys
import time

import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracelake.ingest import decode_request

PAYLOAD = orjson.dumps({"messages": [{"role": "user", "content": "lorem ipsum " * 19}]}).decode()


def _mlflow_span(span, span_type: str) -> None:
    span.set_attribute("mlflow.traceRequestId", '"tr-0123"')
    span.set_attribute("mlflow.spanType", f'"{span_type}"')
    span.set_attribute("mlflow.spanFunctionName", '"answer"')
    span.set_attribute("mlflow.spanInputs", PAYLOAD)
    span.set_attribute("mlflow.spanOutputs", PAYLOAD)
    if span_type == "LLM":
        span.set_attribute("mlflow.llm.model", '"gpt-4o-mini"')
        span.set_attribute("mlflow.chat.tokenUsage", '{"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}')


def _openinference_span(span, span_type: str) -> None:
    span.set_attribute("openinference.span.kind", span_type)
    span.set_attribute("input.value", PAYLOAD)
    span.set_attribute("input.mime_type", "application/json")
    span.set_attribute("output.value", PAYLOAD)
    span.set_attribute("output.mime_type", "application/json")
    if span_type == "LLM":
        span.set_attribute("llm.model_name", "gpt-4o-mini")
        span.set_attribute("llm.token_count.prompt", 12)
        span.set_attribute("llm.token_count.completion", 30)
        span.set_attribute("llm.token_count.total", 42)


def build_bodies(traces: int, style) -> list[bytes]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for _ in range(traces):
        with tracer.start_as_current_span("agent") as root:
            style(root, "AGENT")
            for span_type in ("RETRIEVER", "LLM", "TOOL", "LLM"):
                with tracer.start_as_current_span(span_type.lower()) as child:
                    style(child, span_type)
    spans = exporter.get_finished_spans()
    return [encode_spans(spans[i:i + 512]).SerializeToString() for i in range(0, len(spans), 512)]


def tracelake_decode(body: bytes) -> int:
    return decode_request(body, "application/x-protobuf", None, max_bytes=64 << 20,
                          default_experiment_id="0", header_experiment_id=None).span_count


def naive_decode(body: bytes) -> int:
    doc = MessageToDict(ExportTraceServiceRequest.FromString(body))
    return sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])


def measure(bodies: list[bytes], decode) -> float:
    best = float("inf")
    for _ in range(5):
        spans = 0
        start = time.process_time()
        for body in bodies:
            spans += decode(body)
        best = min(best, (time.process_time() - start) / spans * 1e6)
    return best


def main() -> None:
    traces = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for label, style in (("mlflow", _mlflow_span), ("openinference", _openinference_span)):
        bodies = build_bodies(traces, style)
        size = sum(map(len, bodies)) / (traces * 5)
        ours, peer = measure(bodies, tracelake_decode), measure(bodies, naive_decode)
        print(f"{label:14s} {traces} traces x 5 spans, {size:.0f} B/span: decode_request {ours:.2f} µs/span, "
              f"MessageToDict alone {peer:.2f} µs/span ({peer / ours:.1f}x)")


if __name__ == "__main__":
    main()
