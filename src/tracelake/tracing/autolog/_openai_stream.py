"""Streamed OpenAI responses: a proxy around ``Stream``/``AsyncStream`` and chunk aggregators.

The proxy yields the client's chunks unchanged; it feeds each to an aggregator and ends the span
once: when the stream is exhausted, closed (``close()``/``with``), or raises.
"""
from __future__ import annotations

import logging
from typing import Any

from tracelake.tracing._log import log_rate_limited
from tracelake.tracing.span import Span


def _dump(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json", exclude_none=True) if callable(dump) else obj


class ChatAggregator:
    """Rebuilds a ``chat.completion`` from ``chat.completion.chunk``s (content and tool calls)."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: Any = None

    def add(self, chunk: Any) -> None:
        data = _dump(chunk)
        for key in ("id", "model", "created", "system_fingerprint"):
            if data.get(key) is not None:
                self.meta[key] = data[key]
        if data.get("usage"):
            self.usage = data["usage"]
        for choice in data.get("choices") or ():
            slot = self.choices.setdefault(choice.get("index", 0), {"role": "assistant", "content": "",
                                                                    "tool_calls": {}, "finish_reason": None})
            delta = choice.get("delta") or {}
            if delta.get("role"):
                slot["role"] = delta["role"]
            if delta.get("content"):
                slot["content"] += delta["content"]
            for call in delta.get("tool_calls") or ():
                merged = slot["tool_calls"].setdefault(call.get("index", 0), {
                    "id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    merged["id"] = call["id"]
                function = call.get("function") or {}
                merged["function"]["name"] += function.get("name") or ""
                merged["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def result(self) -> dict[str, Any]:
        choices = []
        for index, slot in sorted(self.choices.items()):
            message: dict[str, Any] = {"role": slot["role"], "content": slot["content"] or None}
            if slot["tool_calls"]:
                message["tool_calls"] = [call for _, call in sorted(slot["tool_calls"].items())]
            choices.append({"index": index, "message": message, "finish_reason": slot["finish_reason"]})
        out: dict[str, Any] = {**self.meta, "object": "chat.completion", "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


class ResponsesAggregator:
    """Keeps the final ``response`` of a Responses API event stream (text deltas as a fallback)."""

    def __init__(self) -> None:
        self.final: Any = None
        self.text: list[str] = []

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = _dump(getattr(event, "response", None))
        elif kind == "response.output_text.delta":
            self.text.append(getattr(event, "delta", "") or "")

    def result(self) -> Any:
        return self.final if self.final is not None else {"output_text": "".join(self.text)}


class ListAggregator:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        self.items.append(_dump(item))

    def result(self) -> Any:
        return self.items


def make_aggregator(operation: str) -> Any:
    if operation == "chat":
        return ChatAggregator()
    if operation == "responses":
        return ResponsesAggregator()
    return ListAggregator()


class _StreamProxyBase:
    def __init__(self, stream: Any, span: Span, aggregator: Any) -> None:
        self._stream = stream
        self._span = span
        self._aggregator = aggregator
        self._done = False

    def __getattr__(self, name: str) -> Any:  # response, _iterator, ... of the client's stream
        if name == "_stream":
            raise AttributeError(name)
        return getattr(self._stream, name)

    def _add(self, chunk: Any) -> None:
        try:
            self._aggregator.add(chunk)
        except Exception:  # an unexpected chunk shape must not break the user's stream
            log_rate_limited("openai-chunk", logging.WARNING, "tracelake: could not aggregate a chunk",
                             exc_info=True)

    def _finish(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        from tracelake.tracing.autolog._openai import record_response

        try:
            record_response(self._span, self._aggregator.result())
        except Exception:  # recording must never break the user's stream
            log_rate_limited("openai-stream", logging.WARNING, "tracelake: could not record a stream",
                             exc_info=True)
        if exc is not None:
            self._span.fail(exc)
        else:
            self._span.end()

    def __del__(self) -> None:  # a stream dropped half-read still ends its span
        if not getattr(self, "_done", True):
            self._finish()


class TracedStream(_StreamProxyBase):
    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self._add(chunk)
        return chunk

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()
        self._finish()


class AsyncTracedStream(_StreamProxyBase):
    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self._add(chunk)
        return chunk

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stream.close()
        self._finish()

    async def aclose(self) -> None:
        await self.close()
