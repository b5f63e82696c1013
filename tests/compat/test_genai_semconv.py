"""Spans written with the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), current and
older (flattened ``gen_ai.prompt.N`` / ``gen_ai.completion.N``) forms, sent with the OTel SDK."""
from __future__ import annotations

import json

from opentelemetry.trace import SpanKind

from tests.compat.conftest import LiveServer
from tests.compat.otel_helpers import exporter_for, mlflow_trace_id, provider_for

INPUT_MESSAGES = [{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                  {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
OUTPUT_MESSAGES = [{"role": "assistant", "finish_reason": "stop",
                    "parts": [{"type": "text", "content": "Sunny."}]}]


def agent(tracer) -> None:
    """invoke_agent → chat (current form), execute_tool, embeddings, text_completion (older form)."""
    with tracer.start_as_current_span("invoke_agent weather", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"}):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.request.temperature": 0.1, "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 12, "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.input.messages": json.dumps(INPUT_MESSAGES),
                "gen_ai.output.messages": json.dumps(OUTPUT_MESSAGES)}):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.id": "call_1", "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "gen_ai.tool.call.result": "sunny"}):
            pass
        with tracer.start_as_current_span("embeddings text-embedding-3-small", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": 4}):
            pass
        with tracer.start_as_current_span("text_completion legacy", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "text_completion", "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-3.5-turbo-instruct",
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Say hi",
                "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "hi",
                "gen_ai.completion.0.finish_reason": "stop",
                "gen_ai.usage.prompt_tokens": 3, "gen_ai.usage.completion_tokens": 1}):
            pass


def _send(live_server: LiveServer, name: str) -> tuple[str, str]:
    experiment_id = live_server.create_experiment(name)
    provider, sent = provider_for(exporter_for("protobuf", live_server.url, {"x-mlflow-experiment-id": experiment_id}))
    agent(provider.get_tracer("genai"))
    provider.shutdown()
    return experiment_id, mlflow_trace_id(sent.get_finished_spans()[0])


def test_genai_spans_get_types_messages_model_and_tokens(live_server: LiveServer, mlflow_reader) -> None:
    _, trace_id = _send(live_server, "genai")
    got = {s.name: s for s in mlflow_reader.get_trace(trace_id).data.spans}
    assert {name: s.span_type for name, s in got.items()} == {
        "invoke_agent weather": "AGENT", "chat gpt-4o": "CHAT_MODEL", "execute_tool get_weather": "TOOL",
        "embeddings text-embedding-3-small": "EMBEDDING", "text_completion legacy": "LLM"}
    root_id = got["invoke_agent weather"].span_id
    assert {s.parent_id for name, s in got.items() if name != "invoke_agent weather"} == {root_id}

    chat = got["chat gpt-4o"]
    assert chat.inputs == INPUT_MESSAGES
    assert chat.outputs == OUTPUT_MESSAGES
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat.attributes["gen_ai.request.temperature"] == 0.1
    assert chat.attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}

    tool = got["execute_tool get_weather"]
    assert tool.inputs == {"city": "Paris"}
    assert tool.outputs == "sunny"
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"

    legacy = got["text_completion legacy"]
    assert legacy.inputs == {"messages": [{"role": "user", "content": "Say hi"}]}
    assert legacy.outputs == {"choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "hi"}}]}
    assert legacy.attributes["mlflow.chat.tokenUsage"] == {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}

    stored = {s.name: s for s in live_server.store.get_trace(trace_id).spans}
    assert stored["chat gpt-4o"].model == "gpt-4o-2024-08-06"  # the response model wins
    assert (stored["chat gpt-4o"].input_tokens, stored["chat gpt-4o"].output_tokens) == (30, 12)
    assert stored["embeddings text-embedding-3-small"].model == "text-embedding-3-small"
    assert stored["text_completion legacy"].model == "gpt-3.5-turbo-instruct"


def test_genai_spans_are_searchable_by_type(live_server: LiveServer, mlflow_reader) -> None:
    experiment_id, trace_id = _send(live_server, "genai-search")
    for filter_string in ("span.type = 'CHAT_MODEL'", "span.type = 'TOOL'", "span.name = 'chat gpt-4o'",
                          "trace.text ILIKE '%weather in paris%'"):
        found = mlflow_reader.search_traces(locations=[experiment_id], filter_string=filter_string)
        assert [t.info.trace_id for t in found] == [trace_id], filter_string
