"""The lake tables: their Arrow schemas, partitioning and keys, declared as data.

Column names follow the reference platform (MLflow traces on Databricks; AI Gateway inference
tables) where it has them. ``change_seq`` is tracelake's own: the store's change sequence of
the row's last change, so a reader can tell two versions of a trace apart.

=======================  ==========  =========================  ===========================
table (schema.table)     partition   one row per                written by
=======================  ==========  =========================  ===========================
monitoring.traces        request_date trace (upserted)           the lake sync
monitoring.spans         request_date span (appended)            the lake sync
monitoring.assessments   —           assessment (upserted)       the lake sync
gateway.inference_<ep>   request_date gateway request (appended) the gateway (later)
gateway.endpoint_usage   request_date gateway request (appended) the gateway (later)
=======================  ==========  =========================  ===========================
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from tracelake.errors import InvalidRequest

TS = pa.timestamp("us", tz="UTC")
STR_MAP = pa.map_(pa.string(), pa.string())

MONITORING = "monitoring"
GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One lake table. ``key``: the columns naming a row (upserts match on them); ``group``:
    the column whose value owns a set of rows that is replaced as a whole (a trace's
    assessments), None when a row is its own group."""

    schema_name: str
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    group: str | None = None
    description: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.schema_name}.{self.name}"


ASSESSMENT_STRUCT = pa.struct([
    ("assessment_id", pa.string()),
    ("assessment_name", pa.string()),
    ("assessment_type", pa.string()),  # feedback | expectation
    ("span_id", pa.string()),
    ("value", pa.string()),  # JSON text
    ("rationale", pa.string()),
    ("source_type", pa.string()),
    ("source_id", pa.string()),
    ("create_time", TS),
    ("last_update_time", TS),
    ("valid", pa.bool_()),
])

TRACES = TableSpec(MONITORING, "traces", pa.schema([
    ("trace_id", pa.string()),
    ("experiment_id", pa.string()),
    ("client_request_id", pa.string()),
    ("request_time", TS),
    ("request_date", pa.date32()),
    ("state", pa.string()),
    ("execution_duration_ms", pa.int64()),
    ("trace_name", pa.string()),
    ("request", pa.string()),  # the root span's inputs (JSON text)
    ("response", pa.string()),  # the root span's outputs (JSON text)
    ("request_preview", pa.string()),
    ("response_preview", pa.string()),
    ("session_id", pa.string()),
    ("user_id", pa.string()),
    ("trace_metadata", STR_MAP),
    ("tags", STR_MAP),
    ("assessments", pa.list_(ASSESSMENT_STRUCT)),
    ("span_count", pa.int64()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("total_tokens", pa.int64()),
    ("cost", pa.float64()),
    ("change_seq", pa.int64()),
]), partition_by=("request_date",), key=("trace_id",),
    description="One row per trace, updated when its tags, assessments or spans change.")

EVENT_STRUCT = pa.struct([("time_unix_nano", pa.int64()), ("name", pa.string()), ("attributes", STR_MAP)])

SPANS = TableSpec(MONITORING, "spans", pa.schema([
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),
    ("experiment_id", pa.string()),
    ("request_date", pa.date32()),  # the trace's request date when the span landed
    ("name", pa.string()),
    ("kind", pa.string()),  # OTel SpanKind: INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
    ("span_type", pa.string()),  # LLM, CHAT_MODEL, RETRIEVER, TOOL, AGENT, CHAIN, ...
    ("start_time_unix_nano", pa.int64()),
    ("end_time_unix_nano", pa.int64()),
    ("start_time", TS),
    ("status_code", pa.string()),  # UNSET | OK | ERROR
    ("status_message", pa.string()),
    ("attributes", STR_MAP),  # values are JSON text unless they were strings
    ("events", pa.list_(EVENT_STRUCT)),
    ("inputs", pa.string()),  # JSON text
    ("outputs", pa.string()),  # JSON text
    ("model", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("total_tokens", pa.int64()),
    ("cost", pa.float64()),
    ("change_seq", pa.int64()),
]), partition_by=("request_date",), key=("trace_id", "span_id"),
    description="One row per span (OpenTelemetry columns plus span type, inputs and outputs).")

ASSESSMENTS = TableSpec(MONITORING, "assessments", pa.schema([
    ("assessment_id", pa.string()),
    ("trace_id", pa.string()),
    ("experiment_id", pa.string()),
    ("span_id", pa.string()),
    ("assessment_name", pa.string()),
    ("assessment_type", pa.string()),  # feedback | expectation
    ("value", pa.string()),  # JSON text
    ("rationale", pa.string()),
    ("source_type", pa.string()),  # HUMAN | LLM_JUDGE | CODE
    ("source_id", pa.string()),
    ("create_time", TS),
    ("last_update_time", TS),
    ("metadata", STR_MAP),
    ("error", pa.string()),  # JSON text
    ("overrides", pa.string()),
    ("valid", pa.bool_()),
    ("change_seq", pa.int64()),
]), key=("assessment_id",), group="trace_id",
    description="One row per assessment (feedback or expectation) on a trace or span.")

# Gateway tables (written by the gateway through the same writer; declared here so the
# catalog, docs and SQL know them).
ENDPOINT_USAGE = TableSpec(GATEWAY, "endpoint_usage", pa.schema([
    ("request_id", pa.string()),
    ("endpoint_name", pa.string()),
    ("requester", pa.string()),
    ("request_time", TS),
    ("request_date", pa.date32()),
    ("status_code", pa.int32()),
    ("input_token_count", pa.int64()),
    ("output_token_count", pa.int64()),
    ("total_token_count", pa.int64()),
    ("streaming", pa.bool_()),
    ("served_entity_id", pa.string()),
]), partition_by=("request_date",), key=("request_id",),
    description="One row per gateway request: who called which endpoint, status and token counts.")

_INFERENCE_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("client_request_id", pa.string()),
    ("request_date", pa.date32()),
    ("request_time", TS),
    ("status_code", pa.int32()),
    ("sampling_fraction", pa.float64()),
    ("execution_duration_ms", pa.int64()),
    ("request", pa.string()),
    ("response", pa.string()),
    ("logging_error_codes", pa.list_(pa.string())),  # MAX_REQUEST_SIZE_EXCEEDED, MAX_RESPONSE_SIZE_EXCEEDED
    ("served_entity_id", pa.string()),
    ("requester", pa.string()),
    ("trace_id", pa.string()),
])

_ENDPOINT_NAME = re.compile(r"[a-z0-9_]{1,100}")


def inference_table(endpoint: str) -> TableSpec:
    """The ``gateway.inference_<endpoint>`` table (the endpoint name lower-cased, ``-`` → ``_``)."""
    name = endpoint.strip().lower().replace("-", "_")
    if not _ENDPOINT_NAME.fullmatch(name):
        raise InvalidRequest(f"endpoint name {endpoint!r} cannot name a table: use letters, digits, '-' and '_'")
    return TableSpec(GATEWAY, f"inference_{name}", _INFERENCE_SCHEMA, partition_by=("request_date",),
                     key=("request_id",), description=f"Requests and responses through gateway endpoint {endpoint}.")


SYNCED: tuple[TableSpec, ...] = (TRACES, SPANS, ASSESSMENTS)
"""The tables the lake sync writes from the store."""

__all__ = ["ASSESSMENTS", "ENDPOINT_USAGE", "GATEWAY", "MONITORING", "SPANS", "SYNCED", "TRACES", "TableSpec",
           "inference_table"]
