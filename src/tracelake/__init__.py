"""tracelake: open, self-hosted tracing for GenAI apps (MLflow-Tracing compatible).

    import tracelake

    tracelake.configure(tracking_uri="http://localhost:5000", experiment_name="my-agent")

    @tracelake.trace(span_type=tracelake.SpanType.AGENT)
    def answer(question: str) -> str: ...

Importing this package loads the SDK only (no server, store or HTTP client code).
"""
from __future__ import annotations

from typing import Any

from tracelake.entities.span import SpanStatus, SpanType
from tracelake.tracing import autolog
from tracelake.tracing.context import get_current_span, get_last_trace_id, update_current_trace, wrap_context
from tracelake.tracing.decorators import start_span, trace
from tracelake.tracing.processor import ExportStats
from tracelake.tracing.propagation import continue_trace, extract, inject
from tracelake.tracing.provider import configure, flush, get_config, get_export_stats, shutdown
from tracelake.tracing.span import RemoteParent, Span

__version__ = "0.1.0"

_LAZY_EXPORTERS = {
    "FileSpanExporter": "tracelake.tracing.exporters.file",
    "InMemorySpanExporter": "tracelake.tracing.exporters.memory",
    "OtlpProtoExporter": "tracelake.tracing.exporters.otlp_proto",
    "SpanExporter": "tracelake.tracing.exporters.base",
    "TracelakeServerExporter": "tracelake.tracing.exporters.server",
}


def __getattr__(name: str) -> Any:
    # Exporters pull in http.client/gzip: load them on first use to keep `import tracelake` fast.
    module = _LAZY_EXPORTERS.get(name)
    if module is None:
        raise AttributeError(f"module 'tracelake' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ExportStats",
    "FileSpanExporter",
    "InMemorySpanExporter",
    "OtlpProtoExporter",
    "RemoteParent",
    "Span",
    "SpanExporter",
    "SpanStatus",
    "SpanType",
    "TracelakeServerExporter",
    "autolog",
    "configure",
    "continue_trace",
    "extract",
    "flush",
    "get_config",
    "get_current_span",
    "get_export_stats",
    "get_last_trace_id",
    "inject",
    "shutdown",
    "start_span",
    "trace",
    "update_current_trace",
    "wrap_context",
]
