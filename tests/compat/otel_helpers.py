"""OpenTelemetry SDK helpers: an OTLP http/json exporter (the installed SDK only ships the
protobuf one), providers aimed at a live server, and span comparison against the mlflow view."""
from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ENCODINGS = ("protobuf", "protobuf+gzip", "json")


class OTLPJsonSpanExporter(SpanExporter):
    """OTLP/HTTP with the JSON encoding: the protobuf message in the proto3 JSON mapping, with the
    OTLP rules on top (trace and span ids as hex, enums as integers)."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        body = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
        for resource_spans in body.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    _hex_ids(span)
                    for link in span.get("links", []):
                        _hex_ids(link)
        resp = httpx.post(self.endpoint, json=body, headers=self.headers)
        return SpanExportResult.SUCCESS if resp.status_code == 200 else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def _hex_ids(obj: dict[str, Any]) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        if obj.get(key):
            obj[key] = base64.b64decode(obj[key]).hex()


def exporter_for(encoding: str, url: str, headers: dict[str, str] | None = None) -> SpanExporter:
    endpoint = f"{url}/v1/traces"
    if encoding == "json":
        return OTLPJsonSpanExporter(endpoint, headers)
    compression = Compression.Gzip if encoding == "protobuf+gzip" else Compression.NoCompression
    return OTLPSpanExporter(endpoint=endpoint, headers=headers, compression=compression)


def provider_for(exporter: SpanExporter, service: str = "compat-test") -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider exporting each span as it ends, plus an in-memory copy of what was sent."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    sent = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, sent


def mlflow_trace_id(span: ReadableSpan) -> str:
    return f"tr-{span.context.trace_id:032x}"


def span_hex_id(span: ReadableSpan) -> str:
    return f"{span.context.span_id:016x}"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def assert_span_matches(sent: ReadableSpan, got: Any) -> None:
    """An OTel span as sent vs the mlflow client's span read back from the server."""
    assert got.name == sent.name
    assert got.span_id == span_hex_id(sent)
    assert got.parent_id == (f"{sent.parent.span_id:016x}" if sent.parent else None)
    assert got.start_time_ns == sent.start_time
    assert got.end_time_ns == sent.end_time
    assert got.status.status_code.value == sent.status.status_code.name
    assert (got.status.description or "") == (sent.status.description or "")
    for key, value in sent.attributes.items():
        assert got.attributes.get(key) == _plain(value), key
    assert [(e.name, e.timestamp, e.attributes) for e in got.events] == [
        (e.name, e.timestamp, {k: _plain(v) for k, v in e.attributes.items()}) for e in sent.events]
