"""The relational schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Design notes:
- ``traces.seq`` is a monotonically increasing change sequence, bumped on every change of a
  trace (ingest, tags, assessments): the lake sync reads ``seq > watermark``.
- Inputs/outputs/attributes/events are JSON text, never re-encoded on ingest.
- ``spans.content_uri`` is set when a span's content was offloaded to artifact storage
  (large traces); the row then keeps only the index columns.
- Keyset paging over (request_time, trace_id) is served by ``ix_traces_exp_time``.
- Spans are keyed by ``(trace_key, span_id)``, where ``traces.trace_key`` is an integer the
  store hands out in increasing order as traces are created. Trace ids are random, so an
  index led by ``trace_id`` takes every span insert to a random page of a b-tree that grows
  past the cache; led by ``trace_key`` the inserts append. Find a trace's spans with
  ``core.spans_of(trace_id)``.
"""
from __future__ import annotations

from sqlalchemy import (
    func,
    literal_column,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False, default=""),
    Column("lifecycle_stage", String(20), nullable=False, default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    # Kept by the store in the same transaction as trace inserts/deletes, so the
    # max-traces-per-experiment limit and retention never COUNT(*) millions of rows.
    Column("trace_count", BigInteger, nullable=False, default=0),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", BigInteger, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(64), primary_key=True),  # "tr-" + 32 hex
    Column("experiment_id", BigInteger, nullable=False),
    Column("client_request_id", String(250)),
    Column("request_time", BigInteger, nullable=False),  # ms
    Column("execution_duration", BigInteger),  # ms, NULL while IN_PROGRESS
    Column("state", String(20), nullable=False),
    Column("name", String(500)),  # root span name
    Column("root_span_id", String(16)),
    Column("request_preview", Text),
    Column("response_preview", Text),
    Column("session_id", String(250)),
    Column("user_id", String(250)),
    Column("span_count", Integer, nullable=False, default=0),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("total_tokens", BigInteger),
    Column("cost", Float),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("seq", BigInteger, nullable=False, default=0),
    Column("first_seq", BigInteger, nullable=False, default=0),  # seq of the transaction that created it
    # Set on every row by the store (see the module notes); nullable only because a column
    # added to existing rows cannot be NOT NULL on SQLite without rebuilding the table.
    Column("trace_key", BigInteger),
)
Index("ux_traces_trace_key", traces.c.trace_key, unique=True)
Index("ix_traces_exp_time", traces.c.experiment_id, traces.c.request_time, traces.c.trace_id)
Index("ix_traces_exp_duration", traces.c.experiment_id, func.coalesce(traces.c.execution_duration, literal_column("-1")),
      traces.c.trace_id)  # "slowest first" without a sort (see search.py)
Index("ix_traces_exp_state_time", traces.c.experiment_id, traces.c.state, traces.c.request_time)
Index("ix_traces_client_request_id", traces.c.client_request_id)
Index("ix_traces_session", traces.c.experiment_id, traces.c.session_id)
Index("ix_traces_seq", traces.c.seq)

trace_tags = Table(
    "trace_tags",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)
Index("ix_trace_tags_key_value", trace_tags.c.key, trace_tags.c.value)

trace_metadata = Table(
    "trace_metadata",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)
Index("ix_trace_metadata_key_value", trace_metadata.c.key, trace_metadata.c.value)

spans = Table(
    "spans",
    metadata,
    Column("trace_key", BigInteger, primary_key=True, autoincrement=False),  # traces.trace_key of its trace
    Column("span_id", String(16), primary_key=True),
    Column("trace_id", String(64), nullable=False),  # "tr-" + 32 hex, as traces.trace_id (not indexed)
    Column("parent_span_id", String(16)),
    Column("name", String(500), nullable=False),
    Column("span_type", String(64), nullable=False),
    Column("kind", String(16), nullable=False, default="INTERNAL"),
    Column("start_time_ns", BigInteger, nullable=False),
    Column("end_time_ns", BigInteger),
    Column("status_code", String(8), nullable=False),
    Column("status_message", Text, nullable=False, default=""),
    Column("inputs", Text),
    Column("outputs", Text),
    Column("attributes", Text),  # JSON object
    Column("events", Text),  # JSON array
    Column("model", String(250)),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("total_tokens", BigInteger),
    Column("cost", Float),
    Column("content_uri", Text),  # set when inputs/outputs/attributes/events live in artifact storage
    Column("seq", BigInteger, nullable=False, default=0),  # seq of the transaction that added it (lake sync)
)
Index("ix_spans_seq", spans.c.seq)

# One row per deleted trace (delete_traces, retention), with the seq of the deleting
# transaction: how deletions reach the lake. The lake sync prunes what it has applied.
trace_tombstones = Table(
    "trace_tombstones",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("experiment_id", BigInteger, nullable=False),
    Column("request_time", BigInteger, nullable=False),
)
Index("ix_trace_tombstones_seq", trace_tombstones.c.seq)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(64), primary_key=True),
    Column("trace_id", String(64), nullable=False),
    Column("span_id", String(16)),
    Column("name", String(250), nullable=False),
    Column("kind", String(16), nullable=False),  # feedback | expectation
    Column("value", Text),  # JSON
    Column("rationale", Text),
    Column("source_type", String(32), nullable=False),
    Column("source_id", String(250), nullable=False, default=""),
    Column("create_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("metadata", Text),  # JSON object
    Column("error", Text),  # JSON object
    Column("overrides", String(64)),
    Column("valid", Boolean, nullable=False, default=True),
)
Index("ix_assessments_trace", assessments.c.trace_id)
Index("ix_assessments_name", assessments.c.name)

# Per-minute rollups kept at ingest so dashboards never scan traces.
# latency_buckets: JSON array of counts over LATENCY_BUCKETS_MS (see store/rollups.py).
rollups = Table(
    "rollups",
    metadata,
    Column("experiment_id", BigInteger, primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # epoch minutes of request_time
    Column("requests", BigInteger, nullable=False, default=0),
    Column("errors", BigInteger, nullable=False, default=0),
    Column("latency_sum_ms", BigInteger, nullable=False, default=0),
    Column("latency_buckets", Text, nullable=False, default="[]"),
    Column("input_tokens", BigInteger, nullable=False, default=0),
    Column("output_tokens", BigInteger, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
)

# Server-side masking rules, per experiment (experiment_id NULL = every experiment).
masking_rules = Table(
    "masking_rules",
    metadata,
    Column("rule_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("experiment_id", BigInteger),
    Column("kind", String(16), nullable=False),  # "regex" | "attribute_key"
    Column("pattern", Text, nullable=False),
    Column("replacement", Text, nullable=False, default="[MASKED]"),
)

# Key/value server state (sequence counters, schema facts).
server_state = Table(
    "server_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
