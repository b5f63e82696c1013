"""The exporter interface: ``export(batch) -> bool`` on the export thread, ``shutdown()`` once."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from tracelake.tracing.span import Span


class SpanExporter:
    """Receives batches of finished spans on the export thread. Must not raise for I/O errors:
    return False (the processor counts the batch as failed). ``resource`` (OTel resource
    attributes) is filled in by ``configure`` when the exporter did not set one."""

    resource: dict[str, object] | None = None

    def export(self, spans: Sequence[Span]) -> bool:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release connections/files. Called once, after the last export."""
