"""An exporter appending one JSON object per span to a file (JSON Lines), readable with ``jq``.

Each line: ``trace_id`` (``tr-...``), ``span_id``, ``parent_span_id``, ``name``, ``span_type``,
``start_time_ns``, ``end_time_ns``, ``status``, ``status_message``, ``attributes`` (as on the wire:
MLflow keys with JSON text) and ``events``.
"""
from __future__ import annotations

import logging
import os
from typing import IO, TYPE_CHECKING, Sequence

import orjson

from tracelake.tracing._log import log_rate_limited
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.span import STATUS_NAMES
from tracelake.tracing.wire import span_attributes

if TYPE_CHECKING:
    from tracelake.tracing.span import Span


def span_record(span: Span) -> dict[str, object]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_id,
        "name": span.name,
        "span_type": span.span_type,
        "start_time_ns": span.start_time_ns,
        "end_time_ns": span.end_time_ns,
        "status": STATUS_NAMES[span._status],
        "status_message": span._status_message,
        "attributes": span_attributes(span),
        "events": [{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in span.events],
    }


class FileSpanExporter(SpanExporter):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: IO[bytes] | None = None
        self._pid = os.getpid()

    def export(self, spans: Sequence[Span]) -> bool:
        data = b"".join(orjson.dumps(span_record(s)) + b"\n" for s in spans)
        try:
            if self._file is None or self._pid != os.getpid():
                self._file, self._pid = open(self.path, "ab"), os.getpid()
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            log_rate_limited(f"file-{self.path}", logging.WARNING,
                             "tracelake: cannot write spans to %s: %s", self.path, exc)
            return False
        return True

    def shutdown(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
