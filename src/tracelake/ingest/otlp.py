"""Decode an OTLP/HTTP ``ExportTraceServiceRequest`` body into tracelake ``Span`` objects.

    decode_otlp(body, content_type, content_encoding, max_bytes) -> list[ResourceSpans]
    ├── read_body()       gzip / deflate / identity, size cap enforced while inflating
    ├── parse_protobuf()  application/x-protobuf (upb, fields read directly)
    └── parse_json()      application/json (OTLP JSON mapping, see ``otlp_json``)

Errors (all ``tracelake.errors``): a media type or content encoding we do not speak →
``UnsupportedMediaType`` (415); a body that does not decode → ``InvalidRequest`` (400); a body
that decodes but describes an impossible span (bad ids, no start time, end before start) →
``Unprocessable`` (422) naming the span; too big once inflated → ``PayloadTooLarge`` (413).

Spans come out with ``attributes`` decoded to Python values; conventions are applied later
(``tracelake.ingest.conventions``). Span links, trace state, flags and the instrumentation
scope are not kept: ``Span`` has no field for them.
"""
from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tracelake.entities import Span, SpanEvent, SpanStatus
from tracelake.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, Unprocessable

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)
ACCEPTED_TYPES = PROTOBUF_TYPES + JSON_TYPES
ACCEPTED_ENCODINGS = ("gzip", "deflate", "identity")

# OTLP enum numbers → tracelake names. UNSPECIFIED kind is read as INTERNAL, as the spec allows.
KIND_NAMES = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_NAMES = (SpanStatus.UNSET, SpanStatus.OK, SpanStatus.ERROR)

_unpack_double = struct.Struct("<d").unpack_from
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclass(slots=True)
class ResourceSpans:
    """The spans of one OTLP ``ResourceSpans`` entry and its resource attributes."""

    attributes: dict[str, Any]
    spans: list[Span] = field(default_factory=list)


def decode_otlp(body: bytes, content_type: str | None, content_encoding: str | None,
                max_bytes: int) -> list[ResourceSpans]:
    """Decode one OTLP/HTTP trace export body (any accepted media type and encoding)."""
    media = media_type(content_type)
    if media not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}: send one of {', '.join(ACCEPTED_TYPES)}")
    data = read_body(body, content_encoding, max_bytes)
    if media in JSON_TYPES:
        from tracelake.ingest.otlp_json import parse_json

        return parse_json(data)
    return parse_protobuf(data)


def media_type(content_type: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` → ``"application/json"``; None → ``""``."""
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def read_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Return the decoded body; the cap applies to the bytes after inflating."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {max_bytes}")
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, "gzip")
    if encoding == "deflate":
        # HTTP "deflate" means a zlib stream, but some clients send raw deflate.
        try:
            return _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate")
        except InvalidRequest:
            return _inflate(body, -zlib.MAX_WBITS, max_bytes, "deflate")
    raise UnsupportedMediaType(
        f"unsupported Content-Encoding {content_encoding!r}: send one of {', '.join(ACCEPTED_ENCODINGS)}")


def _inflate(body: bytes, wbits: int, max_bytes: int, label: str) -> bytes:
    # max_length bounds every allocation, so a small bomb never inflates past the cap.
    chunks: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(data, max_bytes - size + 1)
            size += len(out)
            if size > max_bytes:
                raise PayloadTooLarge(f"request body inflates to more than {max_bytes} bytes")
            chunks.append(out)
            if not inflater.eof:
                raise InvalidRequest(f"truncated {label} body")
            data = inflater.unused_data
            if not data or label != "gzip":  # gzip allows several members back to back
                break
    except zlib.error as exc:
        raise InvalidRequest(f"invalid {label} body: {exc}") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class SpanError(Exception):
    """Raised by the decoders for one span; turned into ``Unprocessable`` with its location."""


def unprocessable(where: str, name: str, span_id: str, problem: str) -> Unprocessable:
    label = f"span {name!r}" + (f" (span_id {span_id})" if span_id else "")
    return Unprocessable(f"{label} at {where}: {problem}")


def parse_protobuf(data: bytes) -> list[ResourceSpans]:
    """Decode a binary ``ExportTraceServiceRequest``."""
    try:
        request = _FastRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidRequest(f"invalid OTLP protobuf body: {exc}") from None
    result: list[ResourceSpans] = []
    hex_ids: dict[bytes, str] = {}  # spans of one trace share one id string
    try:
        for ri, rs in enumerate(request.resource_spans):
            group = ResourceSpans(raw_attributes(rs.resource.attributes))
            append = group.spans.append
            for si, ss in enumerate(rs.scope_spans):
                for pi, ps in enumerate(ss.spans):
                    try:
                        append(_proto_span(ps, hex_ids))
                    except SpanError as exc:
                        sid = ps.span_id.hex() if len(ps.span_id) == 8 else ""
                        raise unprocessable(f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]",
                                            ps.name, sid, str(exc)) from None
            result.append(group)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"invalid OTLP protobuf body: attribute string is not UTF-8 ({exc})") from None
    return result


def _proto_span(ps: Any, hex_ids: dict[bytes, str]) -> Span:
    tid = ps.trace_id
    trace_id = hex_ids.get(tid)
    if trace_id is None:
        if len(tid) != 16 or tid == _ZERO_TRACE_ID:
            raise SpanError(f"trace_id must be 16 non-zero bytes, got {len(tid)} bytes")
        trace_id = hex_ids[tid] = tid.hex()
    sid = ps.span_id
    if len(sid) != 8 or sid == _ZERO_SPAN_ID:
        raise SpanError(f"span_id must be 8 non-zero bytes, got {len(sid)} bytes")
    psid = ps.parent_span_id
    if not psid or psid == _ZERO_SPAN_ID:
        parent = None
    elif len(psid) == 8:
        parent = psid.hex()
    else:
        raise SpanError(f"parent_span_id must be empty or 8 bytes, got {len(psid)} bytes")
    start = ps.start_time_unix_nano
    end = ps.end_time_unix_nano
    if not start:
        raise SpanError("start_time_unix_nano is missing")
    if not end:
        end = None
    elif end < start:
        raise SpanError(f"end_time_unix_nano {end} is before start_time_unix_nano {start}")
    status = ps.status  # encoded Status: b"" (unset) and code-only forms are the common cases
    if not status:
        code, message = 0, ""
    elif len(status) == 2 and status[0] == 0x18:
        code, message = status[1], ""
    else:
        decoded = _status(status)
        code, message = decoded.code, decoded.message
    kind = ps.kind
    events = [SpanEvent(ev.name, ev.time_unix_nano, raw_attributes(ev.attributes)) for ev in ps.events] \
        if len(ps.events) else []
    return Span(trace_id, sid.hex(), parent, ps.name, start, end,
                STATUS_NAMES[code] if 0 <= code < 3 else SpanStatus.UNSET, message,
                "UNKNOWN", None, None, raw_attributes(ps.attributes), events,
                KIND_NAMES[kind] if 0 <= kind < 6 else "INTERNAL")


def _status(raw: bytes) -> Any:
    try:
        return Status.FromString(raw)
    except DecodeError as exc:
        raise InvalidRequest(f"invalid OTLP protobuf body: bad span status: {exc}") from None


def raw_attributes(attributes: Any) -> dict[str, Any]:
    """Attributes read through the fast schema (key → encoded ``AnyValue``) → Python values."""
    attrs: dict[str, Any] = {}
    for key in attributes:  # faster than .items(), which goes through the Mapping ABC in Python
        raw = attributes[key]
        # Fast path: an AnyValue holding only string_value is 0x0A, varint length, UTF-8.
        size = len(raw)
        if size < 130:
            if size >= 2 and raw[0] == 0x0A and raw[1] == size - 2:
                attrs[key] = raw[2:].decode()
                continue
        elif size < 16387 and raw[0] == 0x0A and raw[1] == ((size - 3) & 0x7F) | 0x80 and raw[2] == (size - 3) >> 7:
            attrs[key] = raw[3:].decode()
            continue
        attrs[key] = any_value(raw)
    return attrs


def any_value(raw: bytes) -> Any:
    """An encoded ``AnyValue`` → Python value (scalars read here, the rest via the OTLP message)."""
    size = len(raw)
    if not size:
        return None
    tag = raw[0]
    if tag == 0x18 and size <= 11:  # int_value: varint, two's complement int64
        number = shift = 0
        for i in range(1, size):
            byte = raw[i]
            number |= (byte & 0x7F) << shift
            if byte < 0x80:
                if i == size - 1:
                    return number - (1 << 64) if number >= 1 << 63 else number
                break  # more fields follow: let the real parser decide
            shift += 7
    elif tag == 0x10 and size == 2:  # bool_value
        return raw[1] != 0
    elif tag == 0x21 and size == 9:  # double_value
        return _unpack_double(raw, 1)[0]
    try:
        value = AnyValue.FromString(raw)
    except DecodeError as exc:
        raise InvalidRequest(f"invalid OTLP protobuf body: bad attribute value: {exc}") from None
    return proto_value(value)


def proto_attributes(key_values: Any) -> dict[str, Any]:
    """Repeated ``KeyValue`` → dict of Python values (the last duplicate key wins)."""
    attrs: dict[str, Any] = {}
    for kv in key_values:
        value = kv.value
        text = value.string_value
        # A non-empty string_value means the oneof holds a string: skip WhichOneof.
        attrs[kv.key] = text if text else proto_value(value)
    return attrs


def proto_value(value: Any) -> Any:
    """One ``AnyValue`` → str | bool | int | float | list | dict | None (bytes → base64 text)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [proto_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return proto_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which)


def _fast_schema() -> Any:
    """A private, wire-compatible view of ``ExportTraceServiceRequest`` for decoding.

    ``repeated KeyValue {string key = 1; AnyValue value = 2}`` has exactly the wire form of
    ``map<string, bytes>``, so attributes come out of upb as one map of key → encoded
    AnyValue, without a Python wrapper per KeyValue and per AnyValue (that halves the cost of
    a span). The status is read as bytes too: it is nearly always empty or code-only. Fields
    we do not keep (trace_state, links, flags, scope, counts) are left undeclared and skipped
    by the parser. Map semantics match OTLP's: the last duplicate key wins.
    """
    f = descriptor_pb2.FieldDescriptorProto
    package = "tracelake.ingest.fastotlp"
    proto = descriptor_pb2.FileDescriptorProto(name="tracelake/ingest/fastotlp.proto", package=package,
                                               syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, str | None]],
                map_fields: tuple[tuple[str, int], ...] = ()) -> None:
        m = proto.message_type.add(name=name)
        for field_name, number, field_type, type_name in fields:
            label = f.LABEL_REPEATED if field_name in ("resource_spans", "scope_spans", "spans", "events") \
                else f.LABEL_OPTIONAL
            fd = m.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                fd.type_name = f".{package}.{type_name}"
        for field_name, number in map_fields:
            entry = m.nested_type.add(name="AttributesEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=f.TYPE_BYTES, label=f.LABEL_OPTIONAL)
            m.field.add(name=field_name, number=number, type=f.TYPE_MESSAGE, label=f.LABEL_REPEATED,
                        type_name=f".{package}.{name}.AttributesEntry")

    message("Event", [("time_unix_nano", 1, f.TYPE_FIXED64, None), ("name", 2, f.TYPE_STRING, None)],
            (("attributes", 3),))
    message("Span", [("trace_id", 1, f.TYPE_BYTES, None), ("span_id", 2, f.TYPE_BYTES, None),
                     ("parent_span_id", 4, f.TYPE_BYTES, None), ("name", 5, f.TYPE_STRING, None),
                     ("kind", 6, f.TYPE_INT32, None), ("start_time_unix_nano", 7, f.TYPE_FIXED64, None),
                     ("end_time_unix_nano", 8, f.TYPE_FIXED64, None), ("events", 11, f.TYPE_MESSAGE, "Event"),
                     ("status", 15, f.TYPE_BYTES, None)], (("attributes", 9),))
    message("ScopeSpans", [("spans", 2, f.TYPE_MESSAGE, "Span")])
    message("Resource", [], (("attributes", 1),))
    message("ResourceSpans", [("resource", 1, f.TYPE_MESSAGE, "Resource"),
                              ("scope_spans", 2, f.TYPE_MESSAGE, "ScopeSpans")])
    message("ExportTraceServiceRequest", [("resource_spans", 1, f.TYPE_MESSAGE, "ResourceSpans")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ExportTraceServiceRequest"))


_FastRequest = _fast_schema()
