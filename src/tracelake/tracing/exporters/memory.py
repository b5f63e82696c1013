"""An exporter that keeps spans in memory, for users' own tests::

    exporter = InMemorySpanExporter()
    tracelake.configure(exporter=exporter)
    run_my_agent()
    tracelake.flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["retrieve", "agent"]
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Sequence

from tracelake.tracing.exporters.base import SpanExporter

if TYPE_CHECKING:
    from tracelake.tracing.span import Span


class InMemorySpanExporter(SpanExporter):
    def __init__(self) -> None:
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[Span]) -> bool:
        with self._lock:
            self._spans.extend(spans)
        return True

    def get_finished_spans(self) -> list[Span]:
        """The exported spans, in export order (children usually before their parents)."""
        with self._lock:
            return list(self._spans)

    def get_trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace (``tr-...`` id), sorted by start time."""
        return sorted((s for s in self.get_finished_spans() if s.trace_id == trace_id),
                      key=lambda s: s.start_time_ns)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
