"""Tracing of the ``openai`` client: chat completions, responses and embeddings; sync, async, streams.

``patch()`` replaces ``create`` on the resource classes (so every client, existing or new, is
traced) with a wrapper that opens a span, records the request (model, messages/input, tools),
and on return the response, the model and token usage. A streamed response is wrapped in a proxy
that aggregates the chunks and ends the span when the stream is exhausted, closed, or fails.
Recording problems are logged, never raised: the app always gets the client's own result/error.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from tracelake.entities.span import SpanType
from tracelake.tracing._log import log_rate_limited
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.autolog._openai_stream import AsyncTracedStream, TracedStream, make_aggregator
from tracelake.tracing.span import CURRENT, Span

_SKIPPED_KWARGS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_ORIGINAL = "__tracelake_original__"
_patched: list[tuple[type, str, Any]] = []


def _targets() -> list[tuple[type, str, str, bool]]:
    """(class, operation name, span type, is async) for each traced ``create``."""
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import AsyncEmbeddings, Embeddings
    from openai.resources.responses import AsyncResponses, Responses

    return [
        (Completions, "chat", SpanType.CHAT_MODEL, False),
        (AsyncCompletions, "chat", SpanType.CHAT_MODEL, True),
        (Responses, "responses", SpanType.CHAT_MODEL, False),
        (AsyncResponses, "responses", SpanType.CHAT_MODEL, True),
        (Embeddings, "embeddings", SpanType.EMBEDDING, False),
        (AsyncEmbeddings, "embeddings", SpanType.EMBEDDING, True),
    ]


def patch() -> None:
    """Install the tracing wrappers (idempotent)."""
    for cls, operation, span_type, is_async in _targets():
        original = cls.__dict__["create"]
        if hasattr(original, _ORIGINAL):
            continue
        make = _wrap_async if is_async else _wrap_sync
        wrapper = make(original, operation, span_type)
        setattr(wrapper, _ORIGINAL, original)
        cls.create = wrapper  # type: ignore[attr-defined]
        _patched.append((cls, "create", original))


def unpatch() -> None:
    """Restore the client's own methods."""
    while _patched:
        cls, attr, original = _patched.pop()
        setattr(cls, attr, original)


def _safely(what: str, fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # recording must never break the user's OpenAI call
        log_rate_limited(f"openai-{what}", logging.WARNING, "tracelake: could not record the OpenAI %s",
                         what, exc_info=True)


def _given(value: Any) -> bool:
    import openai

    return not isinstance(value, (openai.NotGiven, openai.Omit))


def _record_request(span: Span, operation: str, kwargs: dict[str, Any]) -> None:
    inputs = {k: v for k, v in kwargs.items() if k not in _SKIPPED_KWARGS and _given(v)}
    span.set_inputs(inputs)
    span.set_attribute("gen_ai.system", "openai")
    span.set_attribute("gen_ai.operation.name", operation)
    if isinstance(inputs.get("model"), str):
        span.set_attribute("gen_ai.request.model", inputs["model"])
    if inputs.get("tools"):
        span.set_attribute("mlflow.chat.tools", list(inputs["tools"]))


def _usage_numbers(usage: Any) -> tuple[int | None, int | None, int | None]:
    """(input, output, total) from any OpenAI usage object or dict."""
    get = usage.get if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    i = get("input_tokens")
    if i is None:
        i = get("prompt_tokens")
    o = get("output_tokens")
    if o is None:
        o = get("completion_tokens")
    return i, o, get("total_tokens")


def record_response(span: Span, response: Any) -> None:
    """Outputs, response model and token usage (used for whole and for aggregated streamed responses)."""
    span.set_outputs(response)
    model = response.get("model") if isinstance(response, dict) else getattr(response, "model", None)
    if isinstance(model, str):
        span.set_attribute("gen_ai.response.model", model)
    usage = response.get("usage") if isinstance(response, dict) else getattr(response, "usage", None)
    if usage is not None:
        i, o, t = _usage_numbers(usage)
        span.set_token_usage(i, o, t)
        span.set_attribute("gen_ai.usage.input_tokens", int(i or 0))
        span.set_attribute("gen_ai.usage.output_tokens", int(o or 0))


def _start(operation: str, span_type: str, kwargs: dict[str, Any]) -> Span:
    span = Span(f"openai.{operation}.create", span_type, CURRENT.get())
    _safely("request", _record_request, span, operation, kwargs)
    return span


def _finish(span: Span, operation: str, result: Any) -> Any:
    import openai

    if isinstance(result, openai.Stream):
        return TracedStream(result, span, make_aggregator(operation))
    if isinstance(result, openai.AsyncStream):
        return AsyncTracedStream(result, span, make_aggregator(operation))
    _safely("response", record_response, span, result)
    span.end()
    return result


def _wrap_sync(original: Callable[..., Any], operation: str, span_type: str) -> Callable[..., Any]:
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not RUNTIME.ensure_ready():
            return original(self, *args, **kwargs)
        span = _start(operation, span_type, kwargs)
        token = CURRENT.set(span)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            CURRENT.reset(token)
            span.fail(exc)
            raise
        CURRENT.reset(token)
        return _finish(span, operation, result)

    create.__doc__ = original.__doc__
    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create


def _wrap_async(original: Callable[..., Any], operation: str, span_type: str) -> Callable[..., Any]:
    async def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not RUNTIME.ensure_ready():
            return await original(self, *args, **kwargs)
        span = _start(operation, span_type, kwargs)
        token = CURRENT.set(span)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            CURRENT.reset(token)
            span.fail(exc)
            raise
        CURRENT.reset(token)
        return _finish(span, operation, result)

    create.__doc__ = original.__doc__
    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create
