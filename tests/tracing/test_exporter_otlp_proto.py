"""The hand-written protobuf encoder, checked by decoding with the real opentelemetry-proto."""
from __future__ import annotations

import math

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

import tracelake
from tracelake import SpanType
from tracelake.tracing.exporters.memory import InMemorySpanExporter
from tracelake.tracing.exporters.otlp_proto import OtlpProtoExporter, any_value, encode_request
from tracelake.tracing.wire import span_attributes
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _value(v: AnyValue):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind)


def _spans(exporter):
    assert tracelake.flush(10)
    return exporter.get_finished_spans()


@pytest.mark.parametrize("value", [
    "text", "ünïcødé ✓", "", True, False, 0, 1, 127, 128, 300, 2**40, -1, -(2**63), 2**63 - 1,
    0.5, -2.25, 1e300, ("a", 1, True, 2.5), (),
])
def test_any_value_decodes_to_the_same_value(value):
    decoded = AnyValue.FromString(any_value(value))
    assert _value(decoded) == (list(value) if isinstance(value, tuple) else value)


def test_non_finite_doubles_round_trip():
    assert math.isnan(AnyValue.FromString(any_value(math.nan)).double_value)
    assert AnyValue.FromString(any_value(math.inf)).double_value == math.inf


def test_export_request_decodes_with_opentelemetry_proto():
    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory, service_name="svc-proto")
    with tracelake.start_span("root", span_type=SpanType.AGENT) as root:
        tracelake.update_current_trace(tags={"k": "v"})
        with tracelake.start_span("tool", span_type=SpanType.TOOL) as tool:
            tool.set_inputs({"x": [1, 2]})
            tool.set_attributes({"n": -5, "ratio": 0.25, "flag": True, "list": ["a", "b"]})
            tool.add_event("note", {"i": 1})
    with pytest.raises(ValueError):
        with tracelake.start_span("broken"):
            raise ValueError("nope")
    spans = _spans(memory)
    resource = {"service.name": "svc-proto", "tracelake.experiment_id": "3"}
    request = ExportTraceServiceRequest.FromString(encode_request(spans, resource))

    (rs,) = request.resource_spans
    assert {kv.key: _value(kv.value) for kv in rs.resource.attributes} == resource
    (ss,) = rs.scope_spans
    assert ss.scope.name == "tracelake"
    by_name = {s.name: s for s in ss.spans}
    assert set(by_name) == {"root", "tool", "broken"}
    for ours in spans:
        pb = by_name[ours.name]
        assert pb.trace_id.hex() == ours.otel_trace_id
        assert pb.span_id.hex() == ours.span_id
        assert (pb.parent_span_id.hex() or None) == ours.parent_id
        assert pb.kind == PbSpan.SPAN_KIND_INTERNAL
        assert (pb.start_time_unix_nano, pb.end_time_unix_nano) == (ours.start_time_ns, ours.end_time_ns)
        assert {kv.key: _value(kv.value) for kv in pb.attributes} == {
            k: list(v) if isinstance(v, tuple) else v for k, v in span_attributes(ours).items()}
    assert by_name["tool"].parent_span_id.hex() == root.span_id
    (event,) = by_name["tool"].events
    assert (event.name, event.attributes[0].key, event.attributes[0].value.int_value) == ("note", "i", 1)
    assert event.time_unix_nano > 0
    assert by_name["root"].status.code == PbStatus.STATUS_CODE_OK
    broken = by_name["broken"]
    assert broken.status.code == PbStatus.STATUS_CODE_ERROR
    assert broken.status.message == "ValueError: nope"
    assert broken.events[0].name == "exception"


def test_exporter_posts_protobuf_with_custom_headers(collector):
    exporter = OtlpProtoExporter(collector.url, headers={"x-api-key": "k1"}, service_name="otel-svc")
    tracelake.configure(exporter=exporter)
    with tracelake.start_span("hello"):
        pass
    assert tracelake.flush(10)
    (req,) = collector.requests
    assert req.path == "/v1/traces"
    assert req.headers["content-type"] == "application/x-protobuf"
    assert req.headers["x-api-key"] == "k1"
    assert req.headers["content-encoding"] == "gzip"
    request = ExportTraceServiceRequest.FromString(req.body)
    resource = {kv.key: _value(kv.value) for kv in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "otel-svc"
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "hello"


def test_endpoint_with_path_is_kept_and_compression_can_be_off(collector):
    exporter = OtlpProtoExporter(collector.url + "/v1/traces", compression=False)
    assert exporter.endpoint == collector.url + "/v1/traces"
    tracelake.configure(exporter=exporter)
    tracelake.start_span("plain").end()
    assert tracelake.flush(10)
    (req,) = collector.requests
    assert "content-encoding" not in req.headers
    assert ExportTraceServiceRequest.FromString(req.raw_body).resource_spans[0].scope_spans[0].spans[0].name == "plain"
