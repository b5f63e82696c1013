"""tracelake.autolog.openai() with the real openai client against a local OpenAI-compatible server."""
from __future__ import annotations

import asyncio

import openai
import orjson
import pytest

import tracelake
from tracelake.tracing.wire import span_attributes

from .openai_server import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Capital of France?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def client(server):
    tracelake.autolog.openai()
    c = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()
    tracelake.autolog.openai(disable=True)


def _only(exporter):
    assert tracelake.flush(10)
    (span,) = exporter.get_finished_spans()
    return span


def test_chat_completion_records_model_messages_output_and_usage(client, exporter):
    result = client.chat.completions.create(model="gpt-test", messages=MESSAGES, temperature=0.2)
    assert result.choices[0].message.content == "Paris is the capital."
    span = _only(exporter)
    assert span.name == "openai.chat.create"
    assert span.span_type == "CHAT_MODEL"
    assert span.inputs == {"model": "gpt-test", "messages": MESSAGES, "temperature": 0.2}
    assert span.outputs["choices"][0]["message"]["content"] == "Paris is the capital."
    assert span.token_usage == {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    assert span.attributes["gen_ai.request.model"] == "gpt-test"
    assert span.attributes["gen_ai.response.model"] == "gpt-test"
    assert span.attributes["gen_ai.system"] == "openai"


def test_chat_tool_calls_and_tools_are_recorded(client, exporter):
    client.chat.completions.create(model="gpt-test", messages=MESSAGES, tools=TOOLS)
    span = _only(exporter)
    call = span.outputs["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert orjson.loads(span.attributes["mlflow.chat.tools"]) == TOOLS


def test_streamed_chat_is_aggregated_when_the_stream_is_consumed(client, exporter):
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "Hello world"
    span = _only(exporter)
    assert span.outputs["choices"][0]["message"] == {"role": "assistant", "content": "Hello world"}
    assert span.outputs["choices"][0]["finish_reason"] == "stop"
    assert span.token_usage == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}


def test_streamed_tool_call_arguments_are_reassembled(client, exporter):
    with client.chat.completions.create(model="gpt-test", messages=MESSAGES, tools=TOOLS, stream=True) as stream:
        for _ in stream:
            pass
    span = _only(exporter)
    (call,) = span.outputs["choices"][0]["message"]["tool_calls"]
    assert call["id"] == "call_9"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}


def test_stream_closed_early_still_ends_the_span(client, exporter):
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    span = _only(exporter)
    assert span.status == "OK"
    assert span.outputs["object"] == "chat.completion"


def test_responses_api_records_output_and_usage(client, exporter):
    response = client.responses.create(model="gpt-resp", input="Say hello in French")
    assert response.output_text == "Bonjour!"
    span = _only(exporter)
    assert span.name == "openai.responses.create"
    assert span.inputs == {"model": "gpt-resp", "input": "Say hello in French"}
    assert span.outputs["output"][0]["content"][0]["text"] == "Bonjour!"
    assert span.token_usage == {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}


def test_streamed_responses_keep_the_final_response(client, exporter):
    stream = client.responses.create(model="gpt-resp", input="hi", stream=True)
    kinds = [event.type for event in stream]
    assert kinds[-1] == "response.completed"
    span = _only(exporter)
    assert span.outputs["output"][0]["content"][0]["text"] == "Bon jour"
    assert span.token_usage["total_tokens"] == 11


def test_embeddings_are_traced_as_embedding_spans(client, exporter):
    result = client.embeddings.create(model="emb-1", input=["a", "b"])
    assert len(result.data) == 2
    span = _only(exporter)
    assert span.span_type == "EMBEDDING"
    assert span.inputs["input"] == ["a", "b"]
    assert span.token_usage == {"input_tokens": 4, "output_tokens": 0, "total_tokens": 4}


def test_api_error_is_recorded_and_reraised(client, exporter):
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fail", messages=MESSAGES)
    span = _only(exporter)
    assert span.status == "ERROR"
    assert span.events[0].attributes["exception.type"] == "openai.InternalServerError"


def test_async_client_chat_and_stream_nest_under_the_current_span(server, exporter):
    tracelake.autolog.openai()

    @tracelake.trace(span_type="AGENT")
    async def agent():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as aclient:
            return await ask(aclient)

    async def ask(aclient):
        first = await aclient.chat.completions.create(model="gpt-test", messages=MESSAGES)
        stream = await aclient.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        embedding = await aclient.embeddings.create(model="emb-1", input="x")
        return first.choices[0].message.content, text, len(embedding.data)

    try:
        assert asyncio.run(agent()) == ("Paris is the capital.", "Hello world", 1)
    finally:
        tracelake.autolog.openai(disable=True)
    assert tracelake.flush(10)
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.name == "agent"]
    children = [s for s in spans if s.parent_id == root.span_id]
    assert sorted(s.name for s in children) == ["openai.chat.create", "openai.chat.create",
                                                "openai.embeddings.create"]
    streamed = [s for s in children if s.outputs.get("object") == "chat.completion" and s.outputs["id"] == "chatcmpl-2"]
    assert streamed[0].outputs["choices"][0]["message"]["content"] == "Hello world"
    assert orjson.loads(span_attributes(root)["mlflow.trace.tokenUsage"])["total_tokens"] == 18 + 4


def test_disable_restores_the_client(server, exporter):
    tracelake.autolog.openai()
    tracelake.autolog.openai()  # idempotent
    tracelake.autolog.openai(disable=True)
    c = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    c.chat.completions.create(model="gpt-test", messages=MESSAGES)
    c.close()
    assert tracelake.flush(10)
    assert exporter.get_finished_spans() == []
    assert len(server.requests) == 1
