"""Helpers for ingest tests: real OpenTelemetry SDK spans, encoded by the real OTLP encoder."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracelake.entities import Span
from tracelake.ingest import DecodedRequest, decode_request

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def record(fn: Callable[[Any], None], resource: dict[str, Any] | None = None) -> list[ReadableSpan]:
    """Run ``fn(tracer)`` under a fresh TracerProvider and return the finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "ingest-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fn(provider.get_tracer("ingest-tests"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def protobuf_body(spans: list[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def json_body(spans: list[ReadableSpan]) -> bytes:
    """protobuf's own JSON mapping (base64 ids, int64 as strings, enum names)."""
    return MessageToJson(encode_spans(spans)).encode()


def decode(body: bytes, content_type: str = PROTOBUF, content_encoding: str | None = None, *,
           max_bytes: int = 16 << 20, default_experiment_id: str | None = "0",
           header_experiment_id: str | None = None, header_experiment_name: str | None = None) -> DecodedRequest:
    return decode_request(body, content_type, content_encoding, max_bytes=max_bytes,
                          default_experiment_id=default_experiment_id, header_experiment_id=header_experiment_id,
                          header_experiment_name=header_experiment_name)


def spans_of(decoded: DecodedRequest) -> dict[str, Span]:
    """All decoded spans by name (names are unique in these tests)."""
    return {span.name: span for batch in decoded.batches for span in batch.spans}


def one_span(attributes: dict[str, Any], name: str = "s") -> Span:
    """Record one span with ``attributes``, send it as protobuf, return the normalised span."""
    spans = record(lambda tracer: tracer.start_span(name, attributes=attributes).end())
    return spans_of(decode(protobuf_body(spans)))[name]


@pytest.fixture
def recorded() -> Callable[..., list[ReadableSpan]]:
    return record
