"""A small traced "app" for the mlflow client tests, and helpers to compare what the client sent
with what it reads back."""
from __future__ import annotations

from typing import Any

import mlflow
import pytest
from mlflow.entities import SpanType

TOKEN_USAGE = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}


@mlflow.trace(span_type=SpanType.RETRIEVER)
def retrieve(query: str) -> list[dict[str, Any]]:
    return [{"page_content": f"about {query}", "metadata": {"doc_id": 1, "score": 0.5}}]


@mlflow.trace(span_type=SpanType.TOOL)
def failing_tool(x: int) -> int:
    raise ValueError(f"boom {x}")


@mlflow.trace(span_type=SpanType.AGENT, attributes={"team": "search", "k": 3})
def root_fn(question: str, n: int) -> dict[str, str]:
    """Five spans: AGENT root → RETRIEVER, CHAT_MODEL, PARSER and a TOOL that raises."""
    docs = retrieve(question)
    with mlflow.start_span("llm", span_type=SpanType.CHAT_MODEL) as span:
        span.set_inputs({"messages": [{"role": "user", "content": question}], "docs": docs})
        span.set_attributes({"temperature": 0.25, "max_tokens": 64, "stop": ["\n", "END"], "stream": False,
                             "mlflow.chat.tokenUsage": TOKEN_USAGE, "model": "fake-model"})
        answer = question.upper()
        span.set_outputs({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]})
    with mlflow.start_span("parse", span_type=SpanType.PARSER) as span:
        span.set_inputs("plain text input")
        span.set_outputs(["a", 1, None, True, 2.5])
    try:
        failing_tool(n)
    except ValueError:
        pass
    mlflow.update_current_trace(tags={"env": "test", "user": "alice"},
                                metadata={"custom.meta": "m1"}, client_request_id="req-123",
                                session_id="s-1", user="u-alice")
    return {"answer": answer}


@mlflow.trace(name="other", span_type=SpanType.CHAIN)
def other_fn(x: int) -> int:
    mlflow.update_current_trace(tags={"env": "prod"})
    raise RuntimeError("other failed")


def run_other(x: int) -> None:
    with pytest.raises(RuntimeError, match="other failed"):
        other_fn(x)


def span_view(span: Any) -> dict[str, Any]:
    """Everything the client shows of a span, in plain values."""
    return {
        "name": span.name,
        "span_type": span.span_type,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "trace_id": span.trace_id,
        "start_time_ns": span.start_time_ns,
        "end_time_ns": span.end_time_ns,
        "status": (span.status.status_code.value, span.status.description),
        "inputs": span.inputs,
        "outputs": span.outputs,
        "attributes": span.attributes,
        "events": [(e.name, e.timestamp, e.attributes) for e in span.events],
    }


def spans_by_name(trace: Any) -> dict[str, dict[str, Any]]:
    return {s.name: span_view(s) for s in trace.data.spans}


def assert_same_spans(sent: Any, got: Any) -> None:
    sent_spans, got_spans = spans_by_name(sent), spans_by_name(got)
    assert sorted(got_spans) == sorted(sent_spans)
    for name, expected in sent_spans.items():
        actual = got_spans[name]
        diff = {k: (expected[k], actual[k]) for k in expected if expected[k] != actual[k]}
        assert not diff, f"span {name!r} differs (sent, read back): {diff}"
