"""TraceInfo (the searchable summary of a request) and Trace (info + spans)."""
from __future__ import annotations

from dataclasses import dataclass, field

from tracelake.entities.assessment import Assessment
from tracelake.entities.span import Span

TRACE_ID_PREFIX = "tr-"

# Reserved metadata keys (MLflow's names, so the mlflow client shows them too).
METADATA_SESSION = "mlflow.trace.session"
METADATA_USER = "mlflow.trace.user"


class TraceState:
    OK = "OK"
    ERROR = "ERROR"
    IN_PROGRESS = "IN_PROGRESS"


def trace_id_from_hex(hex_id: str) -> str:
    return TRACE_ID_PREFIX + hex_id


def hex_from_trace_id(trace_id: str) -> str:
    return trace_id[len(TRACE_ID_PREFIX):] if trace_id.startswith(TRACE_ID_PREFIX) else trace_id


@dataclass(slots=True)
class TraceInfo:
    trace_id: str  # "tr-" + 32 hex
    experiment_id: str
    request_time: int  # ms since epoch
    state: str = TraceState.IN_PROGRESS
    execution_duration: int | None = None  # ms
    client_request_id: str | None = None
    name: str | None = None  # root span name
    request_preview: str | None = None
    response_preview: str | None = None
    trace_metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    assessments: list[Assessment] = field(default_factory=list)
    span_count: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None


@dataclass(slots=True)
class Trace:
    info: TraceInfo
    spans: list[Span] = field(default_factory=list)
    next_span_page_token: str | None = None
