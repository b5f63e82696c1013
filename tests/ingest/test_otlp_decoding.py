"""Decoding OTLP/HTTP bodies: protobuf and JSON, compression, and each error class."""
from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
import zlib

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.trace import SpanKind, Status, StatusCode

from tracelake.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, Unprocessable
from tests.ingest.conftest import JSON, PROTOBUF, decode, json_body, protobuf_body, record, spans_of


def _small_tree(tracer) -> None:
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={
            "s": "text", "b": True, "i": 42, "f": 1.5, "ls": ["a", "b"], "li": [1, 2], "empty": "",
            "no": False, "neg": -5, "big": 2**63 - 1, "zero": 0, "negf": -0.25}) as root:
        root.add_event("checkpoint", {"step": 3, "note": "half way"})
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "upstream failed"))
        with tracer.start_as_current_span("ok-child") as ok:
            ok.set_status(Status(StatusCode.OK))


@pytest.fixture(scope="module")
def tree():
    return record(_small_tree)


def test_protobuf_keeps_tree_timing_and_ids(tree):
    spans = spans_of(decode(protobuf_body(tree)))
    by_name = {s.name: s for s in tree}
    root, child = spans["root"], spans["child"]
    assert root.parent_span_id is None
    assert child.parent_span_id == root.span_id == format(by_name["root"].context.span_id, "016x")
    assert root.trace_id == child.trace_id == format(by_name["root"].context.trace_id, "032x")
    assert (root.start_time_ns, root.end_time_ns) == (by_name["root"].start_time, by_name["root"].end_time)
    assert root.start_time_ns <= child.start_time_ns <= child.end_time_ns <= root.end_time_ns


def test_protobuf_reads_status_kind_and_events(tree):
    spans = spans_of(decode(protobuf_body(tree)))
    assert (spans["child"].status_code, spans["child"].status_message) == ("ERROR", "upstream failed")
    assert spans["ok-child"].status_code == "OK"
    assert spans["root"].status_code == "UNSET"
    assert (spans["root"].kind, spans["child"].kind, spans["ok-child"].kind) == ("SERVER", "CLIENT", "INTERNAL")
    (event,) = spans["root"].events
    assert event.name == "checkpoint" and event.attributes == {"step": 3, "note": "half way"}
    assert spans["root"].start_time_ns <= event.time_ns <= spans["root"].end_time_ns


def test_protobuf_decodes_attribute_values(tree):
    root = spans_of(decode(protobuf_body(tree)))["root"]
    assert root.attributes == {"s": "text", "b": True, "i": 42, "f": 1.5, "ls": ["a", "b"], "li": [1, 2], "empty": "",
                               "no": False, "neg": -5, "big": 2**63 - 1, "zero": 0, "negf": -0.25}
    assert type(root.attributes["no"]) is bool and type(root.attributes["zero"]) is int


def test_protobuf_decodes_kvlist_bytes_and_long_values(tree):
    request = encode_spans(tree)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    nested = AnyValue()
    nested.kvlist_value.values.add(key="k", value=AnyValue(int_value=-7))
    nested.kvlist_value.values.add(key="deep", value=AnyValue(array_value={"values": [AnyValue(bool_value=False)]}))
    span.attributes.extend([
        KeyValue(key="map", value=nested),
        KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xffhi")),
        KeyValue(key="long", value=AnyValue(string_value="é" * 20_000)),
        KeyValue(key="unset", value=AnyValue()),
        KeyValue(key="zero", value=AnyValue(double_value=0.0)),
    ])
    attrs = spans_of(decode(request.SerializeToString()))[span.name].attributes
    assert attrs["map"] == {"k": -7, "deep": [False]}
    assert attrs["raw"] == base64.b64encode(b"\x00\xffhi").decode()
    assert attrs["long"] == "é" * 20_000
    assert attrs["unset"] is None and attrs["zero"] == 0.0


def test_protobuf_all_zero_parent_id_means_root(tree):
    request = encode_spans(tree)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.parent_span_id = bytes(8)
    assert spans_of(decode(request.SerializeToString()))[span.name].parent_span_id is None


def test_protobuf_json_mapping_with_base64_ids_decodes_like_protobuf(tree):
    body = json_body(tree)
    assert json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].endswith("==")
    assert spans_of(decode(body, JSON)) == spans_of(decode(protobuf_body(tree)))


def _hand_written(trace_id="5b8efff798038103d269b633813fc60c", span_id="eee19b7ec3c1b174", **span_fields):
    span = {
        "traceId": trace_id, "spanId": span_id, "parentSpanId": "", "name": "hand", "kind": 2,
        "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000",
        "attributes": [{"key": "my.str", "value": {"stringValue": "v"}},
                       {"key": "my.int", "value": {"intValue": "9007199254740993"}},
                       {"key": "my.num", "value": {"intValue": 7}},
                       {"key": "my.dbl", "value": {"doubleValue": "NaN"}},
                       {"key": "my.arr", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                       {"key": "my.map", "value": {"kvlistValue": {"values": [
                           {"key": "a", "value": {"stringValue": "b"}}]}}},
                       {"key": "my.bytes", "value": {"bytesValue": "aGk="}}],
        "events": [{"timeUnixNano": 1544712660500000000, "name": "ev",
                    "attributes": [{"key": "n", "value": {"intValue": "1"}}]}],
        "status": {"code": 2, "message": "bad"},
    }
    span.update(span_fields)
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "x"}}]},
                               "scopeSpans": [{"scope": {"name": "hand"}, "spans": [span]}]}]}


def test_hand_written_otlp_json_with_hex_ids():
    span = spans_of(decode(json.dumps(_hand_written()).encode(), JSON))["hand"]
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", None)
    assert (span.start_time_ns, span.end_time_ns) == (1544712660000000000, 1544712661000000000)
    assert (span.kind, span.status_code, span.status_message) == ("SERVER", "ERROR", "bad")
    assert span.attributes["my.int"] == 9007199254740993 and span.attributes["my.num"] == 7
    assert span.attributes["my.dbl"] != span.attributes["my.dbl"]  # NaN
    assert span.attributes["my.arr"] == [True] and span.attributes["my.map"] == {"a": "b"}
    assert span.attributes["my.bytes"] == "aGk="
    assert [(e.name, e.time_ns, e.attributes) for e in span.events] == [("ev", 1544712660500000000, {"n": 1})]


def test_json_accepts_snake_case_names_numbers_and_enum_names():
    doc = {"resource_spans": [{"scope_spans": [{"spans": [{
        "trace_id": "5B8EFFF798038103D269B633813FC60C", "span_id": "eee19b7ec3c1b174",
        "parent_span_id": "aaaaaaaaaaaaaaaa", "name": "snake", "kind": "SPAN_KIND_CONSUMER",
        "start_time_unix_nano": 10, "end_time_unix_nano": 20,
        "attributes": [{"key": "k", "value": {"string_value": "v"}}],
        "status": {"code": "STATUS_CODE_OK"}}]}]}]}
    span = spans_of(decode(json.dumps(doc).encode(), "application/json; charset=utf-8"))["snake"]
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert (span.parent_span_id, span.kind, span.status_code) == ("aaaaaaaaaaaaaaaa", "CONSUMER", "OK")
    assert (span.start_time_ns, span.end_time_ns, span.attributes) == (10, 20, {"k": "v"})


def test_json_accepts_unpadded_and_url_safe_base64_ids():
    trace_raw, span_raw = bytes(range(250, 256)) + bytes(range(1, 11)), b"\xfb\xff\x01\x02\x03\x04\x05\x06"
    trace_b64 = base64.urlsafe_b64encode(trace_raw).decode().rstrip("=")
    span_b64 = base64.urlsafe_b64encode(span_raw).decode().rstrip("=")
    span = spans_of(decode(json.dumps(_hand_written(trace_b64, span_b64)).encode(), JSON))["hand"]
    assert (span.trace_id, span.span_id) == (trace_raw.hex(), span_raw.hex())


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "deflate", "deflate-raw", "identity", None])
def test_compressed_bodies_are_inflated(tree, encoding):
    raw = protobuf_body(tree)
    if encoding and encoding.lower() == "gzip":
        body = gzip.compress(raw)
    elif encoding == "deflate":
        body = zlib.compress(raw)
    elif encoding == "deflate-raw":  # some clients send raw deflate as "deflate"
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, encoding = compressor.compress(raw) + compressor.flush(), "deflate"
    else:
        body = raw
    assert spans_of(decode(body, PROTOBUF, encoding)) == spans_of(decode(raw))


def test_multi_member_gzip_is_read_whole(tree):
    raw = json_body(tree)
    half = len(raw) // 2
    body = gzip.compress(raw[:half]) + gzip.compress(raw[half:])
    assert spans_of(decode(body, JSON, "gzip")) == spans_of(decode(raw, JSON))


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/grpc", "application/xml"])
def test_unsupported_content_type_is_415_listing_accepted_types(content_type):
    with pytest.raises(UnsupportedMediaType) as info:
        decode(b"{}", content_type)
    assert info.value.status == 415
    assert "application/x-protobuf" in info.value.message and "application/json" in info.value.message


def test_unsupported_content_encoding_is_415(tree):
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding 'br'.*gzip"):
        decode(protobuf_body(tree), PROTOBUF, "br")


@pytest.mark.parametrize(("body", "content_type", "encoding", "match"), [
    (b"\xff\xff\xff\xff", PROTOBUF, None, "invalid OTLP protobuf"),
    (b"{not json", JSON, None, "invalid OTLP JSON"),
    (b'{"resourceSpans": "nope"}', JSON, None, r"resourceSpans: expected an array"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", '
     b'"spanId": "eee19b7ec3c1b174", "startTimeUnixNano": "soon"}]}]}]}', JSON, None, "startTimeUnixNano"),
    (b'{"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": {"intValue": "x"}}]}}]}', JSON, None,
     r"resource\.attributes\[0\]\.value\.intValue"),
    (b"not gzip at all", PROTOBUF, "gzip", "invalid gzip body"),
    (gzip.compress(b"x" * 1000)[:-30], PROTOBUF, "gzip", "truncated gzip body"),
])
def test_undecodable_body_is_400_saying_what_is_wrong(body, content_type, encoding, match):
    with pytest.raises(InvalidRequest, match=match) as info:
        decode(body, content_type, encoding)
    assert info.value.status == 400


def _mutated(tree, **fields):
    request = encode_spans(tree)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for name, value in fields.items():
        setattr(span, name, value)
    return span.name, request.SerializeToString()


@pytest.mark.parametrize(("fields", "match"), [
    ({"trace_id": b"\x01" * 5}, "trace_id must be 16 non-zero bytes"),
    ({"trace_id": bytes(16)}, "trace_id must be 16 non-zero bytes"),
    ({"span_id": b""}, "span_id must be 8 non-zero bytes"),
    ({"parent_span_id": b"\x01\x02"}, "parent_span_id must be empty or 8 bytes"),
    ({"start_time_unix_nano": 0}, "start_time_unix_nano is missing"),
    ({"start_time_unix_nano": 20, "end_time_unix_nano": 10}, "end_time_unix_nano 10 is before"),
])
def test_semantically_bad_protobuf_span_is_422_naming_it(tree, fields, match):
    name, body = _mutated(tree, **fields)
    with pytest.raises(Unprocessable, match=match) as info:
        decode(body)
    assert info.value.status == 422
    assert f"span {name!r}" in info.value.message and "resourceSpans[0].scopeSpans[0].spans[0]" in info.value.message


@pytest.mark.parametrize(("fields", "match"), [
    ({"traceId": "xyz"}, "traceId 'xyz' is neither 32 hex digits nor base64 of 16 bytes"),
    ({"traceId": ""}, "traceId is missing"),
    ({"spanId": "0000000000000000"}, "spanId is missing or zero"),
    ({"parentSpanId": 12}, "parentSpanId must be a string"),
    ({"endTimeUnixNano": "1"}, "endTimeUnixNano 1 is before"),
])
def test_semantically_bad_json_span_is_422_naming_it(fields, match):
    with pytest.raises(Unprocessable, match=match) as info:
        decode(json.dumps(_hand_written(**fields)).encode(), JSON)
    assert "span 'hand'" in info.value.message


def test_body_over_the_cap_is_413(tree):
    body = protobuf_body(tree)
    with pytest.raises(PayloadTooLarge) as info:
        decode(body, max_bytes=len(body) - 1)
    assert info.value.status == 413
    assert decode(body, max_bytes=len(body)).span_count == 3


def test_gzip_bomb_is_413_without_inflating_it():
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()  # 256 MiB of zeros
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="inflates to more than"):
            decode(bomb, PROTOBUF, "gzip", max_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # bounded by the cap, not by the 256 MiB the bomb expands to


def test_empty_request_decodes_to_nothing():
    decoded = decode(b"", PROTOBUF)
    assert (decoded.batches, decoded.span_count, decoded.trace_count) == ([], 0, 0)
    assert decode(b"{}", JSON).span_count == 0


def test_attribute_string_that_is_not_utf8_is_400(tree):
    request = encode_spans(tree)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="bad", value=AnyValue(bytes_value=b"\xff\xfe"))
    body = request.SerializeToString().replace(b"\x3a\x02\xff\xfe", b"\x0a\x02\xff\xfe")  # bytes → string field
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        decode(body)
