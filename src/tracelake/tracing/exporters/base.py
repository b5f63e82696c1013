"""The exporter interface: ``export(batch) -> bool`` on the export thread, ``shutdown()`` once."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from tracelake.tracing.span import Span
    from tracelake.tracing.wire import Row


class SpanExporter:
    """Receives batches of finished spans on the export thread. Must not raise for I/O errors:
    return False (the processor counts the batch as failed). ``resource`` (OTel resource
    attributes) is filled in by ``configure`` when the exporter did not set one.

    An exporter with ``takes_rows = True`` gets native rows (``wire.span_row``) through
    ``export_rows`` instead of ``Span`` objects, in batches that may be several times
    ``max_export_batch_size`` long when a backlog builds; it is used that way only when every
    configured exporter takes rows.
    """

    resource: dict[str, object] | None = None
    takes_rows = False

    def export(self, spans: Sequence[Span]) -> bool:
        raise NotImplementedError

    def export_rows(self, rows: Sequence[Row]) -> bool:
        """Export native rows (only called when ``takes_rows`` is True)."""
        from tracelake.tracing.wire import row_span

        return self.export([row_span(row) for row in rows])

    def shutdown(self) -> None:
        """Release connections/files. Called once, after the last export."""
