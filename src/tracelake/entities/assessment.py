"""Assessment: feedback or an expectation attached to a trace (or one of its spans)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class AssessmentSource:
    source_type: str = "HUMAN"  # HUMAN | LLM_JUDGE | CODE
    source_id: str = ""


@dataclass(slots=True)
class Assessment:
    assessment_id: str
    trace_id: str
    name: str
    kind: str  # "feedback" | "expectation"
    value: Any = None  # any JSON value
    rationale: str | None = None
    source: AssessmentSource = field(default_factory=AssessmentSource)
    span_id: str | None = None
    create_time: int = 0  # ms
    last_update_time: int = 0  # ms
    metadata: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    overrides: str | None = None
    valid: bool = True
