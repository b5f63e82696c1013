"""The tracelake tracing SDK (spans, context, decorators, export). Public names are re-exported
by ``tracelake``; this package holds the implementation."""
from tracelake.tracing.context import get_current_span, get_last_trace_id, update_current_trace, wrap_context
from tracelake.tracing.decorators import start_span, trace
from tracelake.tracing.propagation import continue_trace, extract, inject
from tracelake.tracing.provider import configure, flush, get_config, get_export_stats, shutdown
from tracelake.tracing.span import NoOpSpan, RemoteParent, Span

__all__ = [
    "NoOpSpan",
    "RemoteParent",
    "Span",
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
