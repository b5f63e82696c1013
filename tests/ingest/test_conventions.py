"""MLflow, OpenTelemetry GenAI and OpenInference attributes normalised into Span fields."""
from __future__ import annotations

import json

import httpx
import openai
import pytest
from openinference.instrumentation import using_session, using_user
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tracelake.entities.trace import METADATA_SESSION, METADATA_USER
from tracelake.errors import Unprocessable
from tests.ingest.conftest import decode, one_span, protobuf_body, record, spans_of

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


# -- MLflow ----------------------------------------------------------------

def test_mlflow_attributes_fill_typed_fields():
    span = one_span({
        "mlflow.traceRequestId": '"tr-abc"', "mlflow.spanType": '"LLM"', "mlflow.spanFunctionName": '"ask"',
        "mlflow.spanInputs": json.dumps({"messages": MESSAGES}), "mlflow.spanOutputs": '"4"',
        "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 7, "output_tokens": 1, "total_tokens": 8}),
        "mlflow.llm.model": '"gpt-4o"', "mlflow.llm.cost": json.dumps({"input_cost": 0.5, "total_cost": 0.75}),
    })
    assert span.span_type == "LLM" and span.model == "gpt-4o"
    assert json.loads(span.inputs) == {"messages": MESSAGES} and span.outputs == '"4"'
    assert (span.input_tokens, span.output_tokens, span.total_tokens, span.cost) == (7, 1, 8, 0.75)
    assert "mlflow.spanInputs" not in span.attributes and "mlflow.spanOutputs" not in span.attributes
    assert span.attributes["mlflow.spanFunctionName"] == '"ask"'
    assert span.attributes["mlflow.traceRequestId"] == '"tr-abc"'


def test_mlflow_inputs_text_is_kept_byte_for_byte():
    text = '{"b": 1,   "a": [1.50, "é"]}'
    assert one_span({"mlflow.spanInputs": text}).inputs == text


@pytest.mark.parametrize(("value", "expected"), [
    ('"CHAT_MODEL"', "CHAT_MODEL"), ("RETRIEVER", "RETRIEVER"), ('"MY_CUSTOM"', "MY_CUSTOM"), ('""', "UNKNOWN"),
])
def test_mlflow_span_type_json_or_raw(value, expected):
    assert one_span({"mlflow.spanType": value}).span_type == expected


def test_mlflow_names_win_over_the_other_conventions():
    span = one_span({
        "mlflow.spanType": '"AGENT"', "openinference.span.kind": "LLM", "gen_ai.operation.name": "chat",
        "mlflow.spanInputs": '{"q": 1}', "input.value": "other", "gen_ai.input.messages": "[]",
        "mlflow.llm.model": '"m-mlflow"', "llm.model_name": "m-oi", "gen_ai.request.model": "m-genai",
        "mlflow.chat.tokenUsage": '{"input_tokens": 1, "output_tokens": 2}', "llm.token_count.prompt": 50,
    })
    assert (span.span_type, span.inputs, span.model) == ("AGENT", '{"q": 1}', "m-mlflow")
    assert (span.input_tokens, span.output_tokens, span.total_tokens) == (1, 2, 3)
    assert span.attributes["input.value"] == "other"  # not consumed, so kept


def test_span_without_any_convention_is_unknown_and_untouched():
    span = one_span({"http.method": "GET"})
    assert (span.span_type, span.inputs, span.outputs, span.model) == ("UNKNOWN", None, None, None)
    assert span.attributes == {"http.method": "GET"}


# -- OpenTelemetry GenAI semantic conventions ------------------------------

@pytest.mark.parametrize(("operation", "span_type"), [
    ("chat", "CHAT_MODEL"), ("text_completion", "LLM"), ("generate_content", "LLM"), ("embeddings", "EMBEDDING"),
    ("execute_tool", "TOOL"), ("invoke_agent", "AGENT"), ("create_agent", "AGENT"), ("dance", "UNKNOWN"),
])
def test_genai_operation_name_sets_span_type(operation, span_type):
    assert one_span({"gen_ai.operation.name": operation}).span_type == span_type


def test_genai_indexed_prompt_and_completion_become_chat_messages():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-0513",
             "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3,
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "4",
             "gen_ai.completion.0.finish_reason": "stop"}
    for i in range(11):  # index 10 must sort after 9
        attrs[f"gen_ai.prompt.{i}.role"] = "user"
        attrs[f"gen_ai.prompt.{i}.content"] = f"m{i}"
    attrs["gen_ai.prompt.1.tool_calls.0.name"] = "calc"
    span = one_span(attrs)
    messages = json.loads(span.inputs)["messages"]
    assert [m["content"] for m in messages] == [f"m{i}" for i in range(11)]
    assert messages[1]["tool_calls"] == [{"name": "calc"}]
    assert json.loads(span.outputs) == {"choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}]}
    assert not [k for k in span.attributes if k.startswith(("gen_ai.prompt.", "gen_ai.completion."))]
    assert (span.span_type, span.model) == ("CHAT_MODEL", "gpt-4o-0513")
    assert (span.input_tokens, span.output_tokens, span.total_tokens) == (12, 3, 15)
    assert span.attributes["gen_ai.request.model"] == "gpt-4o"


def test_genai_structured_messages_json_is_kept_verbatim():
    inputs = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    outputs = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "yo"}], "finish_reason": "stop"}])
    span = one_span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": inputs,
                     "gen_ai.output.messages": outputs})
    assert (span.inputs, span.outputs) == (inputs, outputs)
    assert "gen_ai.input.messages" not in span.attributes


def test_genai_old_token_names_are_read():
    span = one_span({"gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 6})
    assert (span.input_tokens, span.output_tokens, span.total_tokens) == (5, 6, 11)


def test_genai_tool_call_arguments_and_result():
    span = one_span({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                     "gen_ai.tool.call.arguments": '{"city": "Paris"}', "gen_ai.tool.call.result": "sunny"})
    assert (span.span_type, span.inputs, span.outputs) == ("TOOL", '{"city": "Paris"}', '"sunny"')
    assert span.attributes["gen_ai.tool.name"] == "get_weather"


# -- OpenInference ---------------------------------------------------------

def _chat_completion(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})


def test_real_openinference_openai_instrumentation_is_normalised():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    # The OpenAI HTTP API cannot be reached from tests: its answer is canned, the client is real.
    http_client = httpx.Client(transport=httpx.MockTransport(_chat_completion))
    try:
        client = openai.OpenAI(api_key="test", base_url="http://llm.invalid/v1", http_client=http_client)
        with using_session("session-7"), using_user("alice"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
        http_client.close()
    decoded = decode(protobuf_body(list(exporter.get_finished_spans())))
    (span,) = decoded.batches[0].spans
    assert (span.span_type, span.model) == ("LLM", "gpt-4o-mini-2024-07-18")
    assert json.loads(span.inputs)["messages"] == MESSAGES
    assert json.loads(span.outputs)["choices"][0]["message"]["content"] == "4"
    assert (span.input_tokens, span.output_tokens, span.total_tokens) == (9, 1, 10)
    assert "input.value" not in span.attributes and "output.mime_type" not in span.attributes
    (update,) = decoded.batches[0].traces
    assert update.metadata == {METADATA_SESSION: "session-7", METADATA_USER: "alice"}


@pytest.mark.parametrize("kind", ["LLM", "CHAIN", "RETRIEVER", "TOOL", "AGENT", "EMBEDDING", "RERANKER",
                                  "GUARDRAIL", "EVALUATOR", "chain"])
def test_openinference_span_kind_sets_span_type(kind):
    assert one_span({"openinference.span.kind": kind}).span_type == kind.upper()


def test_openinference_unknown_kind_is_unknown():
    assert one_span({"openinference.span.kind": "DANCER"}).span_type == "UNKNOWN"


@pytest.mark.parametrize("mime", [None, "text/plain"])
def test_openinference_plain_text_value_becomes_a_json_string(mime):
    attrs = {"openinference.span.kind": "CHAIN", "input.value": 'say "hi"', "output.value": "hi"}
    if mime:
        attrs["input.mime_type"] = mime
    span = one_span(attrs)
    assert (json.loads(span.inputs), json.loads(span.outputs)) == ('say "hi"', "hi")


def test_openinference_message_attributes_without_value_become_chat_messages():
    span = one_span({
        "openinference.span.kind": "LLM", "llm.model_name": "claude",
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "weather?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Oslo"}',
    })
    assert json.loads(span.inputs) == {"messages": [{"role": "user", "content": "weather?"}]}
    assert json.loads(span.outputs) == {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [
        {"id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}}]}
    assert span.attributes == {"openinference.span.kind": "LLM", "llm.model_name": "claude"}


def test_openinference_cost_is_read():
    assert one_span({"llm.cost.total": 0.25}).cost == 0.25


# -- trace-level data ------------------------------------------------------

def _trace(tracer, root_attrs, child_attrs=None):
    with tracer.start_as_current_span("root", attributes=root_attrs):
        with tracer.start_as_current_span("child", attributes=child_attrs or {}):
            pass


def test_root_span_trace_attributes_become_a_trace_update():
    spans = record(lambda t: _trace(t, {
        "tracelake.trace.tags": json.dumps({"env": "prod", "n": 3}),
        "tracelake.trace.metadata": json.dumps({"app.version": "1.2"}),
        "tracelake.trace.client_request_id": "req-42",
        "mlflow.trace.tokenUsage": json.dumps({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}),
    }))
    decoded = decode(protobuf_body(spans), header_experiment_id="12")
    (update,) = decoded.batches[0].traces
    root = spans_of(decoded)["root"]
    assert update.trace_id == "tr-" + root.trace_id and update.experiment_id == "12"
    assert update.tags == {"env": "prod", "n": "3"}
    assert update.metadata == {"app.version": "1.2", "mlflow.trace.tokenUsage": json.dumps(
        {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})}
    assert update.client_request_id == "req-42"
    assert root.attributes["tracelake.trace.client_request_id"] == "req-42"


def test_trace_attributes_on_a_child_span_are_ignored():
    spans = record(lambda t: _trace(t, {}, {"tracelake.trace.tags": '{"a": "b"}'}))
    assert decode(protobuf_body(spans)).batches[0].traces == []


def test_session_and_user_from_any_span_with_the_root_winning():
    spans = record(lambda t: _trace(t, {"session.id": "from-root"}, {"session.id": "from-child", "user.id": "bob"}))
    (update,) = decode(protobuf_body(spans)).batches[0].traces
    assert update.metadata == {METADATA_SESSION: "from-root", METADATA_USER: "bob"}


def test_explicit_trace_metadata_wins_over_session_id_on_the_same_span():
    spans = record(lambda t: _trace(t, {"session.id": "oi", "tracelake.trace.metadata": json.dumps(
        {METADATA_SESSION: "explicit"})}))
    (update,) = decode(protobuf_body(spans)).batches[0].traces
    assert update.metadata[METADATA_SESSION] == "explicit"


def test_trace_tags_that_are_not_a_json_object_are_422():
    spans = record(lambda t: _trace(t, {"tracelake.trace.tags": "[1, 2]"}))
    with pytest.raises(Unprocessable, match="span 'root'.*tracelake.trace.tags must be a JSON object"):
        decode(protobuf_body(spans))


def test_traces_without_trace_level_data_emit_no_update():
    spans = record(lambda t: _trace(t, {"mlflow.spanType": '"AGENT"'}))
    assert decode(protobuf_body(spans)).batches[0].traces == []


def test_openinference_wins_over_genai():
    span = one_span({"openinference.span.kind": "TOOL", "gen_ai.operation.name": "chat",
                     "llm.model_name": "oi", "gen_ai.request.model": "genai",
                     "llm.token_count.prompt": 1, "gen_ai.usage.input_tokens": 2})
    assert (span.span_type, span.model, span.input_tokens) == ("TOOL", "oi", 1)


def test_non_string_mlflow_inputs_are_json_encoded():
    span = one_span({"mlflow.spanInputs": 3, "mlflow.spanOutputs": ["a", "b"]})
    assert (span.inputs, span.outputs) == ("3", '["a","b"]')
