"""start_span and the span methods; trace-level updates; token usage rollup."""
from __future__ import annotations

import orjson
import pytest

import tracelake
from tracelake import SpanType
from tracelake.tracing.wire import span_attributes


def test_start_span_records_inputs_outputs_attributes_and_events(finished):
    with tracelake.start_span("step", span_type=SpanType.PARSER, attributes={"a": 1}) as span:
        span.set_inputs({"text": "x"})
        span.set_attribute("score", 0.5)
        span.set_attributes({"ok": True, "obj": {"nested": [1, 2]}})
        span.add_event("checkpoint", {"n": 1})
        span.set_outputs(["y"])
    got = finished()["step"]
    assert got.inputs == {"text": "x"}
    assert got.outputs == ["y"]
    assert got.attributes == {"a": 1, "score": 0.5, "ok": True, "obj": '{"nested":[1,2]}'}
    assert [(e.name, e.attributes) for e in got.events] == [("checkpoint", {"n": 1})]
    assert got.span_type == "PARSER"
    assert got.end_time_ns >= got.start_time_ns > 0


def test_set_inputs_encodes_at_call_time(finished):
    messages = [{"role": "user"}]
    with tracelake.start_span("llm") as span:
        span.set_inputs(messages)
        messages.append({"role": "assistant"})
    assert finished()["llm"].inputs == [{"role": "user"}]


def test_set_status_overrides_the_default_ok(finished):
    with tracelake.start_span("guard") as span:
        span.set_status("error", "blocked by policy")
    with tracelake.start_span("plain"):
        pass
    spans = finished()
    assert (spans["guard"].status, spans["guard"].status_message) == ("ERROR", "blocked by policy")
    assert spans["plain"].status == "OK"


def test_exception_in_with_block_is_recorded_and_propagates(finished):
    with pytest.raises(ZeroDivisionError):
        with tracelake.start_span("calc"):
            1 / 0  # noqa: B018
    span = finished()["calc"]
    assert span.status == "ERROR"
    assert span.events[0].attributes["exception.type"] == "ZeroDivisionError"


def test_get_current_span_follows_nesting():
    assert tracelake.get_current_span() is None
    with tracelake.start_span("outer") as outer:
        assert tracelake.get_current_span() is outer
        with tracelake.start_span("inner") as inner:
            assert tracelake.get_current_span() is inner
            assert inner.parent_id == outer.span_id
        assert tracelake.get_current_span() is outer
    assert tracelake.get_current_span() is None


def test_trace_ids_have_mlflow_and_otel_forms():
    with tracelake.start_span("root") as span:
        pass
    assert span.trace_id.startswith("tr-") and len(span.trace_id) == 35
    assert span.trace_id == "tr-" + span.otel_trace_id
    assert len(span.span_id) == 16
    assert tracelake.get_last_trace_id() == span.trace_id


def test_update_current_trace_from_a_nested_span_lands_on_the_root(finished):
    with tracelake.start_span("root"):
        with tracelake.start_span("child"):
            tracelake.update_current_trace(tags={"env": "prod", "n": 1}, metadata={"v": "2"},
                                           client_request_id="req-7", session_id="s-1", user="u-1")
    spans = finished()
    root = span_attributes(spans["root"])
    assert orjson.loads(root["tracelake.trace.tags"]) == {"env": "prod", "n": "1"}
    assert orjson.loads(root["tracelake.trace.metadata"]) == {
        "v": "2", "mlflow.trace.session": "s-1", "mlflow.trace.user": "u-1"}
    assert root["tracelake.trace.client_request_id"] == "req-7"
    child = span_attributes(spans["child"])
    assert not any(k.startswith("tracelake.trace.") for k in child)


def test_update_current_trace_without_span_warns_and_does_nothing(caplog):
    tracelake.update_current_trace(tags={"a": "b"})
    assert "no active span" in caplog.text


def test_token_usage_on_llm_spans_is_rolled_up_to_the_root(finished):
    with tracelake.start_span("agent", span_type=SpanType.AGENT):
        with tracelake.start_span("llm1", span_type=SpanType.LLM) as s1:
            s1.set_token_usage(input_tokens=10, output_tokens=5)
        with tracelake.start_span("llm2", span_type=SpanType.CHAT_MODEL) as s2:
            s2.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    spans = finished()
    assert spans["llm1"].token_usage == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert orjson.loads(span_attributes(spans["llm2"])["mlflow.chat.tokenUsage"]) == {
        "input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    assert orjson.loads(span_attributes(spans["agent"])["mlflow.trace.tokenUsage"]) == {
        "input_tokens": 11, "output_tokens": 7, "total_tokens": 18}


def test_span_types_match_mlflow():
    from mlflow.entities import SpanType as MlflowSpanType

    for name in ("LLM", "CHAT_MODEL", "RETRIEVER", "TOOL", "AGENT", "CHAIN", "EMBEDDING", "RERANKER", "PARSER"):
        assert getattr(SpanType, name) == getattr(MlflowSpanType, name)


def test_end_is_idempotent(exporter):
    span = tracelake.start_span("manual")
    span.end()
    span.end()
    assert tracelake.flush()
    assert len(exporter.get_finished_spans()) == 1


def test_sampling_ratio_zero_exports_nothing_but_keeps_context(exporter):
    tracelake.configure(exporter=exporter, sampling_ratio=0.0)
    with tracelake.start_span("root") as root:
        with tracelake.start_span("child") as child:
            assert child.parent_id == root.span_id
            assert tracelake.inject({})["traceparent"].endswith("-00")
    assert tracelake.flush()
    assert exporter.get_finished_spans() == []
