"""The Store interface: everything the server asks of trace storage.

Implemented by ``tracelake.store.sql.SqlStore`` on SQLite and PostgreSQL. Writes that
return have been committed. Errors are ``tracelake.errors`` exceptions.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tracelake.entities import Assessment, Experiment, Span, Trace, TraceInfo

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None = None


@dataclass(slots=True)
class TraceUpdate:
    """Trace-level facts that arrive with spans (from root-span attributes or StartTraceV3)."""

    trace_id: str  # "tr-" + 32 hex
    experiment_id: str
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    client_request_id: str | None = None


@dataclass(slots=True)
class SpanBatch:
    """One ingest request's worth of spans, already normalised (conventions applied)."""

    experiment_id: str
    spans: list[Span]
    traces: list[TraceUpdate] = field(default_factory=list)


@dataclass(slots=True)
class IngestResult:
    traces: int  # distinct traces touched
    spans_written: int  # new spans (re-sent duplicates are not counted)
    spans_duplicate: int


@dataclass(slots=True)
class MetricPoint:
    minute: int  # epoch minutes
    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    input_tokens: int
    output_tokens: int
    cost: float


class Store(abc.ABC):
    # -- lifecycle -------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    # -- experiments -----------------------------------------------------
    @abc.abstractmethod
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str: ...
    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    @abc.abstractmethod
    def search_experiments(self, view_type: str = "ACTIVE_ONLY", max_results: int = 1000,
                           page_token: str | None = None, filter_string: str | None = None,
                           order_by: list[str] | None = None) -> Page[Experiment]: ...
    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...
    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...
    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...
    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- ingest ----------------------------------------------------------
    @abc.abstractmethod
    def write_spans(self, batches: list[SpanBatch]) -> list[IngestResult]:
        """Commit several batches in ONE transaction (group commit); one result per batch."""
    @abc.abstractmethod
    def start_trace(self, info: TraceInfo) -> TraceInfo:
        """MLflow StartTraceV3: create or merge the trace row (idempotent)."""

    # -- traces ----------------------------------------------------------
    @abc.abstractmethod
    def get_trace_info(self, trace_id: str) -> TraceInfo: ...
    @abc.abstractmethod
    def get_trace(self, trace_id: str, max_spans: int | None = None,
                  span_page_token: str | None = None) -> Trace: ...
    @abc.abstractmethod
    def search_traces(self, experiment_ids: list[str], filter_string: str | None = None,
                      order_by: list[str] | None = None, max_results: int = 100,
                      page_token: str | None = None) -> Page[TraceInfo]: ...
    @abc.abstractmethod
    def count_traces(self, experiment_ids: list[str], filter_string: str | None = None) -> int: ...
    @abc.abstractmethod
    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None: ...
    @abc.abstractmethod
    def delete_trace_tag(self, trace_id: str, key: str) -> None: ...
    @abc.abstractmethod
    def delete_traces(self, experiment_id: str, trace_ids: list[str] | None = None,
                      max_timestamp_millis: int | None = None, max_traces: int | None = None) -> int: ...

    # -- assessments -----------------------------------------------------
    @abc.abstractmethod
    def create_assessment(self, assessment: Assessment) -> Assessment: ...
    @abc.abstractmethod
    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment: ...
    @abc.abstractmethod
    def update_assessment(self, trace_id: str, assessment_id: str, changes: dict[str, Any]) -> Assessment: ...
    @abc.abstractmethod
    def delete_assessment(self, trace_id: str, assessment_id: str) -> None: ...

    # -- monitoring, masking, retention ----------------------------------
    @abc.abstractmethod
    def get_metrics(self, experiment_id: str, start_minute: int, end_minute: int) -> list[MetricPoint]: ...
    @abc.abstractmethod
    def list_masking_rules(self, experiment_id: str | None = None) -> list[dict[str, Any]]:
        """Rules for one experiment plus the global ones (experiment_id NULL)."""
    @abc.abstractmethod
    def add_masking_rule(self, kind: str, pattern: str, replacement: str = "[MASKED]",
                         experiment_id: str | None = None) -> int: ...
    @abc.abstractmethod
    def delete_masking_rule(self, rule_id: int) -> None: ...
    @abc.abstractmethod
    def apply_retention(self, max_age_ms: int | None, max_traces: int | None,
                        experiment_id: str | None = None) -> int: ...
