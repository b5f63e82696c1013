"""An app traced by ``openinference-instrumentation-openai`` around the real ``openai`` client
(pointed at the local fake OpenAI server), exporting OTLP to a live tracelake server."""
from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.compat.conftest import LiveServer
from tests.compat.fake_openai import COMPLETION_TOKENS, PROMPT_TOKENS, FakeOpenAI, fake_openai_server
from tests.compat.otel_helpers import exporter_for, mlflow_trace_id, provider_for

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is tracelake?"}]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as server:
        yield server


def _run_app(live_server: LiveServer, fake: FakeOpenAI, experiment_id: str) -> InMemorySpanExporter:
    """A CHAIN span around one chat completion, with a session and a user set OpenInference's way."""
    provider, sent = provider_for(exporter_for("protobuf", live_server.url, {"x-mlflow-experiment-id": experiment_id}),
                                  service="openai-app")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
        tracer = provider.get_tracer("app")
        with using_attributes(session_id="s-42", user_id="u-7"):
            with tracer.start_as_current_span("answer", attributes={
                    "openinference.span.kind": "CHAIN", "input.value": "What is tracelake?"}) as span:
                reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
                span.set_attribute("output.value", reply.choices[0].message.content)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    return sent


def test_llm_span_has_type_messages_model_and_tokens(live_server: LiveServer, mlflow_reader,
                                                     fake_openai: FakeOpenAI) -> None:
    experiment_id = live_server.create_experiment("openinference")
    sent = _run_app(live_server, fake_openai, experiment_id)
    assert fake_openai.requests[0]["messages"] == MESSAGES

    spans = {s.name: s for s in sent.get_finished_spans()}
    trace_id = mlflow_trace_id(spans["answer"])
    got = {s.name: s for s in mlflow_reader.get_trace(trace_id).data.spans}
    assert set(got) == {"answer", "ChatCompletion"}
    llm, chain = got["ChatCompletion"], got["answer"]
    assert chain.span_type == "CHAIN"
    assert llm.span_type == "LLM"
    assert llm.parent_id == chain.span_id
    assert llm.inputs["messages"] == MESSAGES
    assert llm.inputs["model"] == "gpt-4o-mini"
    assert llm.outputs["choices"][0]["message"] == {"role": "assistant", "content": "Echo: What is tracelake?",
                                                    "refusal": None}
    assert llm.attributes["llm.model_name"] == "gpt-4o-mini"
    assert llm.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
    assert chain.inputs == "What is tracelake?"
    assert chain.outputs == "Echo: What is tracelake?"

    stored = {s.name: s for s in live_server.store.get_trace(trace_id).spans}["ChatCompletion"]
    assert stored.model == "gpt-4o-mini"
    assert (stored.input_tokens, stored.output_tokens, stored.total_tokens) == (
        PROMPT_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS + COMPLETION_TOKENS)


def test_session_user_and_span_search(live_server: LiveServer, mlflow_reader, fake_openai: FakeOpenAI) -> None:
    experiment_id = live_server.create_experiment("openinference-search")
    sent = _run_app(live_server, fake_openai, experiment_id)
    trace_id = mlflow_trace_id(sent.get_finished_spans()[0])

    info = mlflow_reader.get_trace(trace_id).info
    assert info.trace_metadata["mlflow.trace.session"] == "s-42"
    assert info.trace_metadata["mlflow.trace.user"] == "u-7"
    for filter_string in ("span.type = 'LLM'", "trace.session_id = 's-42'", "trace.user = 'u-7'",
                          "trace.text ILIKE '%what is tracelake%'"):
        found = mlflow_reader.search_traces(locations=[experiment_id], filter_string=filter_string)
        assert [t.info.trace_id for t in found] == [trace_id], filter_string
    totals = live_server.store.get_trace_info(trace_id)
    assert (totals.input_tokens, totals.output_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
