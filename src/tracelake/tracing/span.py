"""The live span (what ``start_span`` and ``@trace`` create) and its trace-level data.

Hot-path object: ``__slots__``, integer ids from ``random.getrandbits``, ``time.time_ns``; inputs
and outputs are kept as the JSON text encoded at the call site. Hex ids, attribute dictionaries
and the wire format are produced later, on the exporter thread (see ``wire.py``).
"""
from __future__ import annotations

import random
import time
import traceback
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import orjson

from tracelake.entities.span import SpanEvent, SpanStatus, SpanType
from tracelake.entities.trace import TRACE_ID_PREFIX
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.serialize import attribute_value, to_json

_getrandbits = random.getrandbits
_random = random.random
_time_ns = time.time_ns
_LOW64 = (1 << 64) - 1

STATUS_NAMES = (SpanStatus.UNSET, SpanStatus.OK, SpanStatus.ERROR)  # index = OTLP status code
TOKEN_USAGE_KEY = "mlflow.chat.tokenUsage"


class RemoteParent:
    """A span of another process, known only by the ids it sent in ``traceparent``."""

    __slots__ = ("trace_id", "span_id", "sampled")

    def __init__(self, trace_id: int, span_id: int, sampled: bool) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled

    def __repr__(self) -> str:
        return f"RemoteParent(trace_id={self.trace_id:032x}, span_id={self.span_id:016x}, sampled={self.sampled})"


# The active span (or a remote parent) of the running code: follows asyncio tasks by itself.
CURRENT: ContextVar[Span | RemoteParent | None] = ContextVar("tracelake.current_span", default=None)
# True on the exporter thread: nothing created there is exported (the SDK never traces itself).
SUPPRESSED: ContextVar[bool] = ContextVar("tracelake.suppressed", default=False)


class TraceData:
    """Trace-level data set while the trace runs (tags, metadata, client request id, summed token
    usage). Held by the local root span, created on first use: most traces never need one."""

    __slots__ = ("tags", "metadata", "client_request_id", "usage")

    def __init__(self) -> None:
        self.tags: dict[str, str] | None = None
        self.metadata: dict[str, str] | None = None
        self.client_request_id: str | None = None
        self.usage: list[int] | None = None  # [input, output, total] summed over the spans


_last_trace = (0, 0)  # trace id (high, low 64 bits) of the last local root span that ended


def last_trace_id() -> int:
    """The integer trace id of the last local root span that ended in this process (0: none)."""
    hi, lo = _last_trace
    return hi << 64 | lo


def _exception_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class Span:
    """One timed operation. Use it as a context manager (``with start_span(...) as span``)."""

    # The trace's id (as two 64-bit halves, the way the native wire format sends it) and sampling
    # decision are copied into every span; the trace-level data lives on the local root (``_root``
    # is None for the root itself, so no span refers to itself).
    __slots__ = ("_trace_hi", "_trace_lo", "_sampled", "_root", "_trace_data", "_span_id", "_parent_id", "name",
                 "span_type", "start_time_ns", "end_time_ns", "_inputs", "_outputs", "_attributes",
                 "_events", "_status", "_status_message", "_usage", "_token")

    def __init__(self, name: str, span_type: str, parent: Span | RemoteParent | None) -> None:
        self._span_id = _getrandbits(64) or 1
        if parent is None:
            self._trace_hi = _getrandbits(64)
            self._trace_lo = _getrandbits(64) or 1  # a trace id is not 0
            ratio = RUNTIME.sampling_ratio
            self._sampled = (ratio >= 1.0 or _random() < ratio) and not SUPPRESSED.get()
            self._root = None
            self._parent_id = 0
        elif parent.__class__ is Span:
            self._trace_hi = parent._trace_hi
            self._trace_lo = parent._trace_lo
            self._sampled = parent._sampled
            self._root = parent._root or parent
            self._parent_id = parent._span_id
        else:  # a remote parent: this span is the local root of a distributed trace
            self._trace_hi = parent.trace_id >> 64
            self._trace_lo = parent.trace_id & _LOW64
            self._sampled = parent.sampled and not SUPPRESSED.get()
            self._root = None
            self._parent_id = parent.span_id
        self.name = name
        self.span_type = span_type
        self._inputs = self._outputs = self._attributes = self._events = self._usage = self._token = None
        self._trace_data = None
        self._status = 0
        self._status_message = ""
        self.end_time_ns = 0
        self.start_time_ns = _time_ns()

    # -- identity -----------------------------------------------------------------------------
    @property
    def _trace_id(self) -> int:
        return self._trace_hi << 64 | self._trace_lo

    @property
    def trace_id(self) -> str:
        """The MLflow trace id: ``tr-`` + 32 hex."""
        return f"{TRACE_ID_PREFIX}{self._trace_id:032x}"

    @property
    def otel_trace_id(self) -> str:
        return f"{self._trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self._span_id:016x}"

    @property
    def parent_id(self) -> str | None:
        return f"{self._parent_id:016x}" if self._parent_id else None

    @property
    def is_root(self) -> bool:
        """True for the first span of this trace in this process."""
        return self._root is None

    @property
    def sampled(self) -> bool:
        return self._sampled

    def trace_data(self) -> TraceData:
        """The trace-level data of this span's trace (on its local root), created if needed."""
        root = self._root or self
        data = root._trace_data
        if data is None:
            data = root._trace_data = TraceData()
        return data

    # -- content ------------------------------------------------------------------------------
    @property
    def inputs(self) -> Any:
        return None if self._inputs is None else orjson.loads(self._inputs)

    @property
    def outputs(self) -> Any:
        return None if self._outputs is None else orjson.loads(self._outputs)

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self._attributes) if self._attributes else {}

    @property
    def events(self) -> list[SpanEvent]:
        return list(self._events) if self._events else []

    @property
    def status(self) -> str:
        return STATUS_NAMES[self._status]

    @property
    def status_message(self) -> str:
        return self._status_message

    @property
    def token_usage(self) -> dict[str, int] | None:
        if self._usage is None:
            return None
        return {"input_tokens": self._usage[0], "output_tokens": self._usage[1], "total_tokens": self._usage[2]}

    def set_inputs(self, inputs: Any) -> None:
        """Record the inputs (encoded to JSON now: later mutations of ``inputs`` are not seen)."""
        if self._sampled:
            self._inputs = to_json(inputs, RUNTIME.max_value_bytes)

    def set_outputs(self, outputs: Any) -> None:
        """Record the outputs (encoded to JSON now)."""
        if self._sampled:
            self._outputs = to_json(outputs, RUNTIME.max_value_bytes)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute: primitives stay primitives, anything else is stored as JSON text."""
        if key == TOKEN_USAGE_KEY and isinstance(value, dict):
            self.set_token_usage(value.get("input_tokens"), value.get("output_tokens"), value.get("total_tokens"))
            return
        if self._attributes is None:
            self._attributes = {}
        self._attributes[str(key)] = attribute_value(value)

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_token_usage(self, input_tokens: int | None = None, output_tokens: int | None = None,
                        total_tokens: int | None = None) -> None:
        """Record token usage (LLM / CHAT_MODEL spans); it is summed into the trace's total."""
        i = int(input_tokens or 0)
        o = int(output_tokens or 0)
        self._usage = (i, o, int(total_tokens) if total_tokens is not None else i + o)

    def set_status(self, status: str, message: str = "") -> None:
        """Set ``OK``, ``ERROR`` or ``UNSET`` (case-insensitive), with an optional message."""
        name = str(getattr(status, "status_code", status)).upper()
        if name.startswith("STATUSCODE."):
            name = name[len("STATUSCODE."):]
        self._status = STATUS_NAMES.index(name) if name in STATUS_NAMES else 0
        self._status_message = message or ""

    def add_event(self, name: str, attributes: dict[str, Any] | None = None,
                  timestamp_ns: int | None = None) -> None:
        attrs = {str(k): attribute_value(v) for k, v in attributes.items()} if attributes else {}
        if self._events is None:
            self._events = []
        self._events.append(SpanEvent(name, timestamp_ns or _time_ns(), attrs))

    def record_exception(self, exc: BaseException) -> None:
        """Add an ``exception`` event (type, message, stack) and set ERROR status."""
        try:
            etype = _exception_type(exc)
            message = str(exc)
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except Exception:  # str() of a user exception may raise; keep something useful
            etype, message, stack = type(exc).__name__, "<unprintable exception>", ""
        self.add_event("exception", {"exception.type": etype, "exception.message": message,
                                     "exception.stacktrace": stack})
        self._status = 2
        self._status_message = f"{etype}: {message}" if message else etype

    # -- lifecycle ----------------------------------------------------------------------------
    def end(self) -> None:
        """End the span (idempotent) and hand it to the exporter."""
        global _last_trace
        if self.end_time_ns:
            return
        self.end_time_ns = _time_ns()
        if not self._status:
            self._status = 1
        if self._usage is not None:
            self._add_usage_to_trace()
        if self._root is None:
            _last_trace = (self._trace_hi, self._trace_lo)
        if self._sampled and RUNTIME.processor is not None:
            RUNTIME.processor.on_end(self)

    def _add_usage_to_trace(self) -> None:
        usage = self._usage
        assert usage is not None
        data = self.trace_data()
        if data.usage is None:
            data.usage = [0, 0, 0]
        total = data.usage
        total[0] += usage[0]
        total[1] += usage[1]
        total[2] += usage[2]

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` and end the span (used when an exception leaves the span)."""
        self.record_exception(exc)
        self.end()

    def __enter__(self) -> Span:
        self._token = CURRENT.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        token: Token[Any] | None = self._token
        if token is not None:
            self._token = None
            try:
                CURRENT.reset(token)
            except ValueError:  # exited in another context (e.g. across an await in a generator)
                pass
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.fail(exc)
        else:
            self.end()

    def __repr__(self) -> str:
        return f"Span(name={self.name!r}, span_type={self.span_type!r}, trace_id={self.trace_id})"


class NoOpSpan:
    """What ``start_span`` gives when tracing is disabled: every method does nothing."""

    trace_id = None
    span_id = None
    parent_id = None
    name = ""
    span_type = SpanType.UNKNOWN
    inputs = outputs = token_usage = None
    status = SpanStatus.UNSET

    def set_inputs(self, inputs: Any) -> None: ...
    def set_outputs(self, outputs: Any) -> None: ...
    def set_attribute(self, key: str, value: Any) -> None: ...
    def set_attributes(self, attributes: dict[str, Any]) -> None: ...
    def set_token_usage(self, *args: Any, **kwargs: Any) -> None: ...
    def set_status(self, status: str, message: str = "") -> None: ...
    def add_event(self, *args: Any, **kwargs: Any) -> None: ...
    def record_exception(self, exc: BaseException) -> None: ...
    def end(self) -> None: ...

    def __enter__(self) -> NoOpSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


NO_OP_SPAN = NoOpSpan()
