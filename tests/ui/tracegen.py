"""Traces for the UI tests, recorded with the real OpenTelemetry SDK (see tests/server/otlp_helpers.py)."""
from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.trace import Status, StatusCode

from tests.server.otlp_helpers import mlflow_span_attrs, protobuf_body, record

XSS_NAME = '<img src=x onerror="window.__xss=1">agent<script>window.__xss=2</script>'
XSS_TEXT = '<script>window.__xss=3</script><img src=x onerror="window.__xss=4"><b>bold?</b>'


def _usage(i: int, o: int) -> dict[str, str]:
    return {"mlflow.chat.tokenUsage": json.dumps({"input_tokens": i, "output_tokens": o, "total_tokens": i + o}),
            "mlflow.llm.cost": json.dumps({"total_cost": (i + o) * 1e-5})}


def chat_trace(question: str = "What is the weather in Paris?", *, name: str = "weather-agent",
               session: str | None = None, user: str | None = None, tags: dict[str, str] | None = None,
               error: bool = False, duration_ms: int = 40) -> bytes:
    """An agent turn: AGENT root → RETRIEVER, LLM (chat with a tool call), TOOL (fails when
    ``error``), LLM (final answer). The root carries session, user and tags."""
    answer = "It is 18 °C and sunny in Paris."
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": question}]
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}

    def run(tracer: Any) -> None:
        attrs = mlflow_span_attrs("AGENT", {"messages": messages}, answer)
        if session:
            attrs["session.id"] = session
        if user:
            attrs["user.id"] = user
        if tags:
            attrs["tracelake.trace.tags"] = json.dumps(tags)
        start = otel_time()
        root = tracer.start_span(name, attributes=attrs, start_time=start)
        ctx = otel.set_span_in_context(root)
        step = duration_ms * 1_000_000 // 5

        def child(span_name: str, span_type: str, inputs: Any, outputs: Any, at: int, extra: dict | None = None,
                  parent: Any = ctx) -> Any:
            span = tracer.start_span(span_name, context=parent, start_time=start + at * step,
                                     attributes={**mlflow_span_attrs(span_type, inputs, outputs), **(extra or {})})
            return span

        retrieve = child("search_docs", "RETRIEVER", {"query": question}, [{"doc": "weather.md"}], 0)
        retrieve.end(end_time=start + step)
        llm = child("chat_completion", "CHAT_MODEL", {"messages": messages, "model": "gpt-4o-mini"},
                    {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [tool_call]}}]},
                    1, _usage(120, 18))
        llm.end(end_time=start + 2 * step)
        tool = child("get_weather", "TOOL", {"city": "Paris"}, None if error else {"temp_c": 18}, 2)
        if error:
            try:
                raise TimeoutError("weather service did not answer in 2 s")
            except TimeoutError as exc:
                tool.record_exception(exc)
            tool.set_status(Status(StatusCode.ERROR, "weather service did not answer in 2 s"))
        tool.end(end_time=start + 3 * step)
        final = child("chat_completion", "CHAT_MODEL",
                      {"messages": [*messages, {"role": "assistant", "tool_calls": [tool_call]},
                                    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'}]},
                      {"choices": [{"message": {"role": "assistant", "content": answer}}]}, 3, _usage(160, 24))
        final.end(end_time=start + 4 * step)
        if error:
            root.set_status(Status(StatusCode.ERROR, "tool failed"))
        root.end(end_time=start + duration_ms * 1_000_000)

    return protobuf_body(record(run))


_clock = [0]


def otel_time() -> int:
    """Strictly increasing start times (ns), so traces sent one after another sort in order."""
    import time

    now = time.time_ns()
    _clock[0] = max(now, _clock[0] + 1_000_000)
    return _clock[0]


def xss_trace() -> bytes:
    def run(tracer: Any) -> None:
        attrs = mlflow_span_attrs("AGENT", {"messages": [{"role": "user", "content": XSS_TEXT}]}, XSS_TEXT)
        attrs["tracelake.trace.tags"] = json.dumps({"note": XSS_TEXT})
        attrs["session.id"] = "<img src=x onerror=\"window.__xss=5\">"
        child_attrs = {**mlflow_span_attrs("LLM", {XSS_TEXT: XSS_TEXT}, {"html": XSS_TEXT}), XSS_TEXT: XSS_TEXT}
        with tracer.start_as_current_span(XSS_NAME, attributes=attrs), \
                tracer.start_as_current_span(XSS_TEXT, attributes=child_attrs) as s:
            s.add_event(XSS_TEXT, {XSS_TEXT: XSS_TEXT})

    return protobuf_body(record(run))


def big_trace(spans: int, fan_out: int = 50) -> bytes:
    """A root with ``spans / fan_out`` groups of ``fan_out`` children each; every 97th span fails."""
    def run(tracer: Any) -> None:
        start = otel_time()
        root = tracer.start_span("big-batch-job", start_time=start, attributes={"mlflow.spanType": '"CHAIN"'})
        root_ctx = otel.set_span_in_context(root)
        group_ctx = root_ctx
        group = None
        for i in range(1, spans):
            at = start + i * 10_000
            if (i - 1) % fan_out == 0:
                if group is not None:
                    group.end(end_time=at)
                group = tracer.start_span(f"group-{i // fan_out}", context=root_ctx, start_time=at,
                                          attributes={"mlflow.spanType": '"AGENT"'})
                group_ctx = otel.set_span_in_context(group)
                continue
            span = tracer.start_span(f"step-{i}", context=group_ctx, start_time=at,
                                     attributes={"mlflow.spanType": '"TOOL"' if i % 3 else '"LLM"'})
            if i % 97 == 0:
                span.set_status(Status(StatusCode.ERROR, f"step {i} failed"))
            span.end(end_time=at + 8_000)
        if group is not None:
            group.end(end_time=start + spans * 10_000)
        root.end(end_time=start + spans * 10_000 + 1000)

    return protobuf_body(record(run))
