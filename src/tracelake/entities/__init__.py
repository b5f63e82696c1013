"""Typed entities shared by the SDK, the store and the server (MLflow V3 compatible).

Nothing here imports the server, the store or third-party packages beyond the stdlib.
"""
from tracelake.entities.assessment import Assessment, AssessmentSource
from tracelake.entities.experiment import Experiment
from tracelake.entities.span import Span, SpanEvent, SpanStatus, SpanType
from tracelake.entities.trace import Trace, TraceInfo, TraceState

__all__ = [
    "Assessment",
    "AssessmentSource",
    "Experiment",
    "Span",
    "SpanEvent",
    "SpanStatus",
    "SpanType",
    "Trace",
    "TraceInfo",
    "TraceState",
]
