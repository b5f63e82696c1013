"""``@trace`` for sync/async functions and (async) generators, and ``start_span``.

Everything that can be decided at decoration time is: the wrapper kind, the span name, and how
to turn the call's arguments into the inputs dict. Sync and async functions get a wrapper
generated with their own signature (``_wrapper.make_wrapper``); generators capture their inputs
with ``_capture.make_capture``. The per-call work is a span object, two contextvar operations
and two orjson calls.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping, TypeVar, overload

from tracelake.entities.span import SpanType
from tracelake.tracing._capture import make_capture
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing._wrapper import make_wrapper
from tracelake.tracing.span import CURRENT, NO_OP_SPAN, NoOpSpan, RemoteParent, Span
from tracelake.tracing.serialize import attribute_value, to_json

F = TypeVar("F", bound=Callable[..., Any])
Reducer = Callable[[list[Any]], Any]


@overload
def trace(func: F) -> F: ...
@overload
def trace(func: None = None, *, name: str | None = None, span_type: str = SpanType.UNKNOWN,
          attributes: Mapping[str, Any] | None = None, output_reducer: Reducer | None = None
          ) -> Callable[[F], F]: ...


def trace(func: Any = None, *, name: str | None = None, span_type: str = SpanType.UNKNOWN,
          attributes: Mapping[str, Any] | None = None, output_reducer: Reducer | None = None) -> Any:
    """Trace every call of the decorated function as a span.

    Works with or without arguments, on sync and async functions, generators and async
    generators (and on staticmethod/classmethod objects). Inputs are the bound call arguments
    (without ``self``/``cls``), outputs the return value; for generators, the list of yielded
    chunks, or ``output_reducer(chunks)``. Exceptions are recorded and re-raised unchanged.
    """
    def decorate(fn: Any) -> Any:
        if isinstance(fn, (staticmethod, classmethod)):
            return type(fn)(decorate(fn.__func__))
        span_name = name or getattr(fn, "__name__", None) or "span"
        attrs = {str(k): attribute_value(v) for k, v in attributes.items()} if attributes else None
        if inspect.isasyncgenfunction(fn):
            return _wrap_async_gen(fn, span_name, span_type, attrs, make_capture(fn), output_reducer)
        if inspect.isgeneratorfunction(fn):
            return _wrap_gen(fn, span_name, span_type, attrs, make_capture(fn), output_reducer)
        traced = make_wrapper(fn, span_name, span_type, attrs, is_async=inspect.iscoroutinefunction(fn))
        return functools.wraps(fn)(traced)

    return decorate(func) if func is not None else decorate


def _finish_stream(span: Span, chunks: list[Any], reducer: Reducer | None) -> None:
    if span._sampled:
        output: Any = chunks
        if reducer is not None:
            try:
                output = reducer(chunks)
            except Exception as exc:  # a failing reducer must not break the user's stream
                span.add_event("output_reducer_failed", {"exception.message": str(exc)})
        span._outputs = to_json(output, RUNTIME.max_value_bytes)
    span.end()


def _wrap_gen(fn: Any, name: str, span_type: str, attrs: dict[str, Any] | None, capture: Any,
              reducer: Reducer | None) -> Any:
    # The span is current only while the generator body runs (between two yields it is not:
    # the consumer's code is not part of the generator's operation).
    current = CURRENT
    rt = RUNTIME

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        if not (rt.enabled if rt.ready else rt.ensure_ready()):
            return (yield from fn(*args, **kwargs))
        span = Span(name, span_type, current.get())
        if span._sampled:
            span._inputs = capture(args, kwargs)
            if attrs:
                span._attributes = attrs.copy()
        chunks: list[Any] = []
        token = current.set(span)
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            current.reset(token)
            span.fail(exc)
            raise
        current.reset(token)
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current.set(span)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                current.reset(token)
                _finish_stream(span, chunks, reducer)
                return stop.value
            except BaseException as exc:
                current.reset(token)
                span.fail(exc)
                raise
            current.reset(token)
            chunks.append(item)
            try:
                to_send = yield item
            except GeneratorExit:  # the consumer stopped early: close the inner generator too
                gen.close()
                _finish_stream(span, chunks, reducer)
                raise
            except BaseException as exc:  # thrown in by the consumer: forward it
                to_throw = exc

    return traced


def _wrap_async_gen(fn: Any, name: str, span_type: str, attrs: dict[str, Any] | None, capture: Any,
                    reducer: Reducer | None) -> Any:
    current = CURRENT
    rt = RUNTIME

    @functools.wraps(fn)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        gen = fn(*args, **kwargs)
        if not (rt.enabled if rt.ready else rt.ensure_ready()):
            async for item in gen:
                yield item
            return
        span = Span(name, span_type, current.get())
        if span._sampled:
            span._inputs = capture(args, kwargs)
            if attrs:
                span._attributes = attrs.copy()
        chunks: list[Any] = []
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current.set(span)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = await gen.athrow(exc)
                else:
                    item = await gen.asend(to_send)
            except StopAsyncIteration:
                current.reset(token)
                _finish_stream(span, chunks, reducer)
                return
            except BaseException as exc:
                current.reset(token)
                span.fail(exc)
                raise
            current.reset(token)
            chunks.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                await gen.aclose()
                _finish_stream(span, chunks, reducer)
                raise
            except BaseException as exc:
                to_throw = exc

    return traced


def start_span(name: str = "span", span_type: str = SpanType.UNKNOWN,
               attributes: Mapping[str, Any] | None = None, inputs: Any = None,
               parent: Span | RemoteParent | None = None) -> Span | NoOpSpan:
    """Start a span; use it as a context manager so it becomes the current span::

        with tracelake.start_span("retrieve", span_type=SpanType.RETRIEVER) as span:
            span.set_inputs({"query": q})
            ...

    ``parent`` overrides the current span (e.g. a ``RemoteParent`` from ``extract``).
    An exception leaving the ``with`` block is recorded and re-raised.
    """
    if not RUNTIME.ensure_ready():
        return NO_OP_SPAN
    span = Span(name, span_type, parent if parent is not None else CURRENT.get())
    if attributes:
        span.set_attributes(dict(attributes))
    if inputs is not None:
        span.set_inputs(inputs)
    return span
