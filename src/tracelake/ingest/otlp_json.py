"""The OTLP JSON mapping of ``ExportTraceServiceRequest``, read leniently.

The spec says: lowerCamelCase field names, trace/span ids as hex, 64-bit integers as decimal
strings, enums as integers. Real clients also send snake_case names, base64 ids (protobuf's
own JSON mapping, e.g. ``MessageToJson``), integers as JSON numbers and enums by name; all of
these are accepted. Type errors are ``InvalidRequest`` (400) with the JSON path; bad ids or
times are ``Unprocessable`` (422) naming the span.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from tracelake.entities import Span, SpanEvent, SpanStatus
from tracelake.errors import InvalidRequest
from tracelake.ingest.otlp import KIND_NAMES, STATUS_NAMES, ResourceSpans, SpanError, unprocessable

_KIND_BY_NAME = {
    "SPAN_KIND_UNSPECIFIED": "INTERNAL", "SPAN_KIND_INTERNAL": "INTERNAL", "SPAN_KIND_SERVER": "SERVER",
    "SPAN_KIND_CLIENT": "CLIENT", "SPAN_KIND_PRODUCER": "PRODUCER", "SPAN_KIND_CONSUMER": "CONSUMER",
}
_STATUS_BY_NAME = {
    "STATUS_CODE_UNSET": SpanStatus.UNSET, "STATUS_CODE_OK": SpanStatus.OK, "STATUS_CODE_ERROR": SpanStatus.ERROR,
}
_HEX = frozenset("0123456789abcdefABCDEF")


class _BadJson(Exception):
    """A type error at a JSON path; becomes InvalidRequest."""


def parse_json(data: bytes) -> list[ResourceSpans]:
    """Decode an OTLP JSON ``ExportTraceServiceRequest``."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"invalid OTLP JSON body: {exc}") from None
    try:
        return _request(doc)
    except _BadJson as exc:
        raise InvalidRequest(f"invalid OTLP JSON body: {exc}") from None


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _BadJson(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadJson(f"{path}: expected an array, got {type(value).__name__}")
    return value


def _request(doc: Any) -> list[ResourceSpans]:
    doc = _object(doc, "$")
    result = []
    for ri, rs in enumerate(_list(_get(doc, "resourceSpans", "resource_spans"), "resourceSpans")):
        rpath = f"resourceSpans[{ri}]"
        rs = _object(rs, rpath)
        resource = _object(rs.get("resource"), rpath + ".resource")
        group = ResourceSpans(_attributes(resource.get("attributes"), rpath + ".resource.attributes"))
        scopes = _get(rs, "scopeSpans", "scope_spans")
        if scopes is None:  # the pre-1.0 name, still sent by old exporters
            scopes = _get(rs, "instrumentationLibrarySpans", "instrumentation_library_spans")
        for si, ss in enumerate(_list(scopes, rpath + ".scopeSpans")):
            spath = f"{rpath}.scopeSpans[{si}]"
            ss = _object(ss, spath)
            for pi, js in enumerate(_list(ss.get("spans"), spath + ".spans")):
                path = f"{spath}.spans[{pi}]"
                js = _object(js, path)
                try:
                    group.spans.append(_span(js, path))
                except SpanError as exc:
                    name = js.get("name")
                    sid = _get(js, "spanId", "span_id")
                    raise unprocessable(path, name if isinstance(name, str) else "",
                                        sid if isinstance(sid, str) else "", str(exc)) from None
        result.append(group)
    return result


def _span(js: dict[str, Any], path: str) -> Span:
    trace_id = _id(_get(js, "traceId", "trace_id"), 16, "traceId")
    span_id = _id(_get(js, "spanId", "span_id"), 8, "spanId")
    if trace_id is None or set(trace_id) == {"0"}:
        raise SpanError("traceId is missing or zero")
    if span_id is None or set(span_id) == {"0"}:
        raise SpanError("spanId is missing or zero")
    parent = _id(_get(js, "parentSpanId", "parent_span_id"), 8, "parentSpanId")
    if parent is not None and set(parent) == {"0"}:
        parent = None
    start = _uint(_get(js, "startTimeUnixNano", "start_time_unix_nano"), path + ".startTimeUnixNano")
    end = _uint(_get(js, "endTimeUnixNano", "end_time_unix_nano"), path + ".endTimeUnixNano")
    if start <= 0:
        raise SpanError("startTimeUnixNano is missing")
    if not end:
        end = None
    elif end < start:
        raise SpanError(f"endTimeUnixNano {end} is before startTimeUnixNano {start}")
    name = js.get("name") or ""
    if not isinstance(name, str):
        raise _BadJson(f"{path}.name: expected a string")
    status = _object(js.get("status"), path + ".status")
    message = status.get("message") or ""
    if not isinstance(message, str):
        raise _BadJson(f"{path}.status.message: expected a string")
    events = []
    for ei, ev in enumerate(_list(js.get("events"), path + ".events")):
        epath = f"{path}.events[{ei}]"
        ev = _object(ev, epath)
        ev_name = ev.get("name") or ""
        if not isinstance(ev_name, str):
            raise _BadJson(f"{epath}.name: expected a string")
        events.append(SpanEvent(ev_name, _uint(_get(ev, "timeUnixNano", "time_unix_nano"), epath + ".timeUnixNano"),
                                _attributes(ev.get("attributes"), epath + ".attributes")))
    return Span(trace_id, span_id, parent, name, start, end,
                _enum(status.get("code"), STATUS_NAMES, _STATUS_BY_NAME, SpanStatus.UNSET, path + ".status.code"),
                message, "UNKNOWN", None, None, _attributes(js.get("attributes"), path + ".attributes"), events,
                _enum(js.get("kind"), KIND_NAMES, _KIND_BY_NAME, "INTERNAL", path + ".kind"))


def _id(value: Any, size: int, what: str) -> str | None:
    """Hex (the OTLP JSON spec) or base64 (protobuf's JSON mapping) → lowercase hex."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SpanError(f"{what} must be a string")
    if len(value) == 2 * size and _HEX.issuperset(value):
        return value.lower()
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_" if ("-" in value or "_" in value)
                               else None, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise SpanError(f"{what} {value!r} is neither {2 * size} hex digits nor base64 of {size} bytes")
    return raw.hex()


def _uint(value: Any, path: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _BadJson(f"{path}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise _BadJson(f"{path}: {value!r} is not an integer") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _BadJson(f"{path}: expected an integer")


def _enum(value: Any, names: tuple[str, ...], by_name: dict[str, str], default: str, path: str) -> str:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return names[value] if 0 <= value < len(names) else default
    if isinstance(value, str):
        if value.isdigit():
            number = int(value)
            return names[number] if number < len(names) else default
        name = by_name.get(value.upper())
        if name is None:
            raise _BadJson(f"{path}: unknown value {value!r}")
        return name
    raise _BadJson(f"{path}: expected an enum name or number")


def _attributes(items: Any, path: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, kv in enumerate(_list(items, path)):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise _BadJson(f"{path}[{i}]: expected an object with a string key")
        attrs[kv["key"]] = _value(kv.get("value"), f"{path}[{i}].value")
    return attrs


def _value(value: Any, path: str) -> Any:
    """One AnyValue object → Python value."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _BadJson(f"{path}: expected an AnyValue object")
    for key, item in value.items():
        if key in ("stringValue", "string_value"):
            if not isinstance(item, str):
                raise _BadJson(f"{path}.stringValue: expected a string")
            return item
        if key in ("boolValue", "bool_value"):
            if not isinstance(item, bool):
                raise _BadJson(f"{path}.boolValue: expected a boolean")
            return item
        if key in ("intValue", "int_value"):
            return _int(item, path + ".intValue")
        if key in ("doubleValue", "double_value"):
            return _double(item, path + ".doubleValue")
        if key in ("arrayValue", "array_value"):
            values = _list(_object(item, path + ".arrayValue").get("values"), path + ".arrayValue.values")
            return [_value(v, f"{path}.arrayValue.values[{i}]") for i, v in enumerate(values)]
        if key in ("kvlistValue", "kvlist_value"):
            return _attributes(_object(item, path + ".kvlistValue").get("values"), path + ".kvlistValue.values")
        if key in ("bytesValue", "bytes_value"):
            if not isinstance(item, str):
                raise _BadJson(f"{path}.bytesValue: expected base64 text")
            return item
    return None


def _int(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise _BadJson(f"{path}: {value!r} is not an integer")


def _double(value: Any, path: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # "NaN", "Infinity", "-Infinity" or a number as text
        try:
            return float(value)
        except ValueError:
            pass
    raise _BadJson(f"{path}: {value!r} is not a number")
