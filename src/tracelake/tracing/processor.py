"""The batch span processor: a bounded queue in front of a background export thread.

The app thread only appends the finished span to a deque (``on_end``). When the queue is full the
span is dropped and counted, with one warning. The export thread wakes on a timer or when a batch
is ready, masks values if asked, and hands batches to the exporters; exporter failures are logged
(rate-limited) and never reach the app. After ``fork`` the child gets a fresh queue and thread.

When every exporter takes native rows (``SpanExporter.takes_rows``; the tracelake server
exporter does), the queue holds each span's row (``wire.span_row``) instead of the span: a tuple
of strings and ints that the garbage collector stops tracking, where queued ``Span`` objects
would survive into the oldest generation and make full collections walk the whole backlog.
A backlog is then handed over in one call of up to ``_BACKLOG_BATCHES`` batches (the exporter
splits it into requests of bounded size): fewer round trips while the app keeps the GIL busy.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson

from tracelake.tracing._log import log_rate_limited, logger
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.serialize import to_json
from tracelake.tracing.span import SUPPRESSED, Span
from tracelake.tracing.wire import Row

Masking = Callable[[Any], Any]
_BACKLOG_BATCHES = 16  # rows handed to the exporters at once, in batches (see the module docstring)


@dataclass(frozen=True, slots=True)
class ExportStats:
    """Counters of one processor (spans, not batches)."""

    queued: int  # waiting in the queue now
    exported: int  # accepted by every exporter
    failed: int  # in batches an exporter gave up on
    dropped: int  # refused because the queue was full


class BatchSpanProcessor:
    def __init__(self, exporters: Sequence[SpanExporter], *, max_queue_size: int = 2048,
                 max_export_batch_size: int = 512, schedule_delay_s: float = 1.0,
                 masking: Masking | None = None) -> None:
        self.exporters = list(exporters)
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = min(max_export_batch_size, max_queue_size)
        self.schedule_delay_s = schedule_delay_s
        self.masking = masking
        self._as_rows = bool(self.exporters) and all(e.takes_rows for e in self.exporters)
        self.exported = self.failed = self.dropped = 0
        self._in_flight = 0
        # The queue takes spans up to _limit: max_queue_size, less what a batch in flight holds
        # beyond max_export_batch_size (so queued + in flight <= max_queue_size + batch size).
        self._limit = max_queue_size
        self._warned_full = False
        self._shutdown = False
        self._start()
        # A weak reference: a processor replaced by configure() must not be revived in children.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (p := ref()) is not None and p._after_fork())

    def _start(self) -> None:
        self._queue: deque[Span | Row] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tracelake-exporter", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # The parent's queued spans are the parent's to export; the child starts empty.
        self._in_flight = 0
        self._limit = self.max_queue_size
        if not self._shutdown:
            self._start()

    # -- app side (hot path) ------------------------------------------------------------------
    def on_end(self, span: Span) -> None:
        queue = self._queue
        n = len(queue)
        if n >= self._limit:
            self._drop()
        else:
            if self._as_rows:  # wire.span_row, inlined
                queue.append((span._trace_hi, span._trace_lo, span._span_id, span._parent_id, span.name,
                              span.span_type, span.start_time_ns, span.end_time_ns, span._status,
                              span._status_message, span._inputs, span._outputs, span._attributes,
                              span._events, span._usage, span._trace_data))
            else:
                queue.append(span)
            if n + 1 == self.max_export_batch_size:
                self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        if not self._warned_full:
            self._warned_full = True
            logger.warning("tracelake: the export queue is full (%d spans); dropping spans "
                           "(see tracelake.get_export_stats().dropped)", self.max_queue_size)

    def stats(self) -> ExportStats:
        return ExportStats(queued=len(self._queue) + self._in_flight, exported=self.exported,
                           failed=self.failed, dropped=self.dropped)

    def force_flush(self, timeout_s: float | None = 30.0) -> bool:
        """Export everything queued before this call; False if ``timeout_s`` passed first."""
        if self._shutdown or not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        return done.wait(timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Flush, stop the thread and shut the exporters down; idempotent."""
        if self._shutdown:
            return True
        flushed = self.force_flush(timeout_s)
        self._shutdown = True
        self._stopping = True
        self._wake.set()
        for exporter in self.exporters:
            exporter.shutdown()
        return flushed

    # -- export thread ------------------------------------------------------------------------
    def _run(self) -> None:
        SUPPRESSED.set(True)  # spans made here (e.g. by a traced masking function) are not exported
        _suppress_otel_instrumentation()
        while not self._stopping:
            self._wake.wait(self.schedule_delay_s)
            self._wake.clear()
            with self._lock:
                waiters, self._flush_waiters = self._flush_waiters, []
            self._drain()
            for waiter in waiters:
                waiter.set()

    def _drain(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        size = self.max_export_batch_size
        longest = size * _BACKLOG_BATCHES if self._as_rows else size
        while queue and not self._stopping:
            n = min(len(queue), longest)
            self._limit = self.max_queue_size - max(0, n - size)
            batch = [popleft() for _ in range(n)]
            self._in_flight = n
            try:
                self._export(batch)
            finally:
                self._in_flight = 0
                self._limit = self.max_queue_size

    def _export(self, batch: list[Any]) -> None:
        masking = self.masking
        as_rows = self._as_rows
        if masking is not None:
            if as_rows:
                batch = [_mask_row(row, masking) for row in batch]
            else:
                for span in batch:
                    _mask_span(span, masking)
        ok = True
        for exporter in self.exporters:
            try:
                ok = (exporter.export_rows(batch) if as_rows else exporter.export(batch)) and ok
            except Exception:  # an exporter bug must not kill the thread or reach the app
                ok = False
                log_rate_limited(f"export-crash-{type(exporter).__name__}", logging.ERROR,
                                 "tracelake: %s failed", type(exporter).__name__, exc_info=True)
        if ok:
            self.exported += len(batch)
        else:
            self.failed += len(batch)


_MASK_FAILED = '"[masked: the masking function failed]"'


def _masked(data: str | None, masking: Masking) -> str | None:
    """The user's masking function applied to decoded JSON text; on failure no value is exported."""
    if data is None:
        return None
    try:
        return to_json(masking(orjson.loads(data)))
    except Exception:  # never export unmasked data because the user's function broke
        log_rate_limited("masking", logging.WARNING, "tracelake: the masking function raised",
                         exc_info=True)
        return _MASK_FAILED


def _mask_span(span: Span, masking: Masking) -> None:
    span._inputs = _masked(span._inputs, masking)
    span._outputs = _masked(span._outputs, masking)


def _mask_row(row: Row, masking: Masking) -> Row:
    return (*row[:10], _masked(row[10], masking), _masked(row[11], masking), *row[12:])


def _suppress_otel_instrumentation() -> None:
    """If OpenTelemetry is loaded, tell its instrumentations not to trace our HTTP export."""
    import sys

    if "opentelemetry.context" not in sys.modules:
        return
    try:
        from opentelemetry import context as otel_context

        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    except Exception:  # an old or odd opentelemetry-api; suppression is best effort
        pass
