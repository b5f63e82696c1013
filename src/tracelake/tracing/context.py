"""Which span is current, and carrying that across threads.

The current span lives in a ``contextvars.ContextVar``: nested calls and asyncio tasks (which copy
the context when created) follow it by themselves. Threads do not: a function submitted to an
executor starts with an empty context. Wrap it with ``wrap_context`` at submission time::

    with ThreadPoolExecutor() as pool:
        futures = [pool.submit(tracelake.wrap_context(retrieve), q) for q in queries]
"""
from __future__ import annotations

import contextvars
import functools
import logging
from typing import Any, Callable, Mapping, TypeVar

from tracelake.entities.trace import METADATA_SESSION, METADATA_USER, TRACE_ID_PREFIX
from tracelake.tracing import span as _span
from tracelake.tracing._log import log_rate_limited
from tracelake.tracing.span import CURRENT, Span

F = TypeVar("F", bound=Callable[..., Any])


def get_current_span() -> Span | None:
    """The active span of the running code, or None."""
    current = CURRENT.get()
    return current if current.__class__ is Span else None


def get_last_trace_id() -> str | None:
    """The ``tr-<32 hex>`` id of the last trace whose root span ended in this process."""
    trace_id = _span.last_trace_id()
    return f"{TRACE_ID_PREFIX}{trace_id:032x}" if trace_id else None


def update_current_trace(tags: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None,
                         client_request_id: str | None = None, session_id: str | None = None,
                         user: str | None = None) -> None:
    """Add tags / metadata to the current trace (from any span of it; they land on the root span).

    ``session_id`` and ``user`` are stored as the metadata keys ``mlflow.trace.session`` and
    ``mlflow.trace.user``. Values are converted to strings. Without an active span it logs a
    warning and does nothing.
    """
    span = get_current_span()
    if span is None:
        log_rate_limited("update_current_trace", logging.WARNING,
                         "tracelake.update_current_trace() called with no active span; ignored")
        return
    trace = span.trace_data()
    if tags:
        if trace.tags is None:
            trace.tags = {}
        trace.tags.update({str(k): str(v) for k, v in tags.items()})
    extra = dict(metadata or {})
    if session_id is not None:
        extra[METADATA_SESSION] = session_id
    if user is not None:
        extra[METADATA_USER] = user
    if extra:
        if trace.metadata is None:
            trace.metadata = {}
        trace.metadata.update({str(k): str(v) for k, v in extra.items()})
    if client_request_id is not None:
        trace.client_request_id = str(client_request_id)


def wrap_context(fn: F) -> F:
    """Bind ``fn`` to the current context (and so the current span) for running on another thread.

    Each call runs in its own copy of the captured context, so the wrapped function may be
    submitted many times and run concurrently (``executor.map(wrap_context(f), items)``).
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> Any:
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_context  # type: ignore[return-value]
