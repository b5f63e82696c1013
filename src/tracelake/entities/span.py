"""Span: one timed operation of a trace (an OpenTelemetry span plus GenAI fields).

``inputs`` and ``outputs`` hold JSON text exactly as captured (never re-encoded on the hot
path); ``attributes`` holds decoded attribute values (str, int, float, bool, lists).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class SpanType:
    """Well-known span types (MLflow's). Any other string is accepted too."""

    LLM = "LLM"
    CHAT_MODEL = "CHAT_MODEL"
    RETRIEVER = "RETRIEVER"
    TOOL = "TOOL"
    AGENT = "AGENT"
    CHAIN = "CHAIN"
    EMBEDDING = "EMBEDDING"
    RERANKER = "RERANKER"
    PARSER = "PARSER"
    MEMORY = "MEMORY"
    GUARDRAIL = "GUARDRAIL"
    EVALUATOR = "EVALUATOR"
    UNKNOWN = "UNKNOWN"


class SpanStatus:
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    trace_id: str  # 32 lowercase hex chars (the OTel trace id, without "tr-")
    span_id: str  # 16 lowercase hex chars
    parent_span_id: str | None
    name: str
    start_time_ns: int
    end_time_ns: int | None
    status_code: str = SpanStatus.UNSET
    status_message: str = ""
    span_type: str = SpanType.UNKNOWN
    inputs: str | None = None  # JSON text
    outputs: str | None = None  # JSON text
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    kind: str = "INTERNAL"
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None

    @property
    def request_id(self) -> str:
        """The MLflow trace id ("tr-" + hex) this span belongs to."""
        return "tr-" + self.trace_id
