"""OTLP/HTTP protobuf exporter, with the protobuf wire format written by hand (no dependency).

Encodes ``opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest``. Field numbers
(from opentelemetry-proto's trace.proto / common.proto / resource.proto):

- ExportTraceServiceRequest: resource_spans=1
- ResourceSpans: resource=1, scope_spans=2;  Resource: attributes=1
- ScopeSpans: scope=1, spans=2;  InstrumentationScope: name=1, version=2
- Span: trace_id=1 (bytes), span_id=2, parent_span_id=4, name=5, kind=6 (enum), start=7 and
  end=8 (fixed64), attributes=9, events=11, status=15
- Event: time_unix_nano=1 (fixed64), name=2, attributes=3;  Status: message=2, code=3
- KeyValue: key=1, value=2;  AnyValue: string=1, bool=2, int=3 (int64), double=4, array=5
- ArrayValue: values=1
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tracelake.tracing.exporters._http import HttpSender, RetryPolicy
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.wire import SCOPE_NAME, SDK_VERSION, build_resource, span_attributes

if TYPE_CHECKING:
    from tracelake.tracing.span import Span

_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack


def _varint(n: int) -> bytes:
    if n < 0:
        n &= (1 << 64) - 1  # int64: two's complement, 10 bytes
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    return _len_field(field, text.encode("utf-8", "surrogatepass"))


def any_value(value: Any) -> bytes:
    t = type(value)
    if t is str:
        return _str_field(1, value)
    if t is bool:
        return b"\x10" + (b"\x01" if value else b"\x00")
    if t is int:
        if -(2**63) <= value < 2**63:
            return b"\x18" + _varint(value)
        return _str_field(1, str(value))
    if t is float:
        return b"\x21" + _pack_d(value)
    if t is tuple or t is list:
        return _len_field(5, b"".join(_len_field(1, any_value(v)) for v in value))
    return _str_field(1, str(value))


def key_value(key: str, value: Any) -> bytes:
    return _str_field(1, key) + _len_field(2, any_value(value))


def _attributes(field: int, attrs: Mapping[str, Any]) -> bytes:
    return b"".join(_len_field(field, key_value(k, v)) for k, v in attrs.items())


def encode_span(span: Span) -> bytes:
    parts = [
        _len_field(1, span._trace_id.to_bytes(16, "big")),
        _len_field(2, span._span_id.to_bytes(8, "big")),
    ]
    if span._parent_id:
        parts.append(_len_field(4, span._parent_id.to_bytes(8, "big")))
    parts.append(_str_field(5, span.name))
    parts.append(b"\x30\x01")  # kind = SPAN_KIND_INTERNAL
    parts.append(b"\x39" + _pack_q(span.start_time_ns))
    parts.append(b"\x41" + _pack_q(span.end_time_ns))
    parts.append(_attributes(9, span_attributes(span)))
    for event in span._events or ():
        body = b"\x09" + _pack_q(event.time_ns) + _str_field(2, event.name) + _attributes(3, event.attributes)
        parts.append(_len_field(11, body))
    status = (_str_field(2, span._status_message) if span._status_message else b"") + (
        b"\x18" + _varint(span._status) if span._status else b"")
    parts.append(_len_field(15, status))
    return b"".join(parts)


def encode_request(spans: Sequence[Span], resource: Mapping[str, Any]) -> bytes:
    """Bytes of an ``ExportTraceServiceRequest`` holding ``spans`` under one resource."""
    scope = _str_field(1, SCOPE_NAME) + _str_field(2, SDK_VERSION)
    scope_spans = _len_field(1, scope) + b"".join(_len_field(2, encode_span(s)) for s in spans)
    resource_spans = _len_field(1, _attributes(1, resource)) + _len_field(2, scope_spans)
    return _len_field(1, resource_spans)


class OtlpProtoExporter(SpanExporter):
    """Sends spans to any OpenTelemetry collector (or tracelake) over OTLP/HTTP protobuf.

    ``endpoint`` is the base URL (``http://collector:4318``); ``/v1/traces`` is appended unless
    the URL already ends with it.
    """

    def __init__(self, endpoint: str = "http://localhost:4318", *, headers: Mapping[str, str] | None = None,
                 service_name: str | None = None, compression: bool = True, timeout_s: float = 10.0,
                 retry: RetryPolicy | None = None) -> None:
        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        self.endpoint = url
        self.resource = build_resource(service_name) if service_name else None
        all_headers = {"Content-Type": "application/x-protobuf", "User-Agent": "tracelake-python"}
        all_headers.update(headers or {})
        self._sender = HttpSender(url, all_headers, timeout_s=timeout_s, compress=compression, retry=retry)

    def export(self, spans: Sequence[Span]) -> bool:
        return self._sender.post(encode_request(spans, self.resource or build_resource()))

    def shutdown(self) -> None:
        self._sender.close()
