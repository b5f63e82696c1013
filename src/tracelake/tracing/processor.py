"""The batch span processor: a bounded queue in front of a background export thread.

The app thread only appends the finished span to a deque (``on_end``). When the queue is full the
span is dropped and counted, with one warning. The export thread wakes on a timer or when a batch
is ready, masks values if asked, and hands batches to the exporters; exporter failures are logged
(rate-limited) and never reach the app. After ``fork`` the child gets a fresh queue and thread.
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

Masking = Callable[[Any], Any]


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
        self.exported = self.failed = self.dropped = 0
        self._in_flight = 0
        self._warned_full = False
        self._shutdown = False
        self._start()
        # A weak reference: a processor replaced by configure() must not be revived in children.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (p := ref()) is not None and p._after_fork())

    def _start(self) -> None:
        self._queue: deque[Span] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._flush_waiters: list[threading.Event] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tracelake-exporter", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # The parent's queued spans are the parent's to export; the child starts empty.
        self._in_flight = 0
        if not self._shutdown:
            self._start()

    # -- app side (hot path) ------------------------------------------------------------------
    def on_end(self, span: Span) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                logger.warning("tracelake: the export queue is full (%d spans); dropping spans "
                               "(see tracelake.get_export_stats().dropped)", self.max_queue_size)
            return
        queue.append(span)
        if len(queue) == self.max_export_batch_size:
            self._wake.set()

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
        size = self.max_export_batch_size
        while queue and not self._stopping:
            n = min(len(queue), size)
            batch = [queue.popleft() for _ in range(n)]
            self._in_flight = n
            try:
                self._export(batch)
            finally:
                self._in_flight = 0

    def _export(self, batch: list[Span]) -> None:
        if self.masking is not None:
            for span in batch:
                _mask_span(span, self.masking)
        ok = True
        for exporter in self.exporters:
            try:
                ok = exporter.export(batch) and ok
            except Exception:  # an exporter bug must not kill the thread or reach the app
                ok = False
                log_rate_limited(f"export-crash-{type(exporter).__name__}", logging.ERROR,
                                 "tracelake: %s failed", type(exporter).__name__, exc_info=True)
        if ok:
            self.exported += len(batch)
        else:
            self.failed += len(batch)


_MASK_FAILED = '"[masked: the masking function failed]"'


def _mask_span(span: Span, masking: Masking) -> None:
    """Apply the user's masking function to decoded inputs/outputs; on failure export no value."""
    for slot in ("_inputs", "_outputs"):
        data = getattr(span, slot)
        if data is None:
            continue
        try:
            setattr(span, slot, to_json(masking(orjson.loads(data))))
        except Exception:  # never export unmasked data because the user's function broke
            setattr(span, slot, _MASK_FAILED)
            log_rate_limited("masking", logging.WARNING, "tracelake: the masking function raised",
                             exc_info=True)


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
