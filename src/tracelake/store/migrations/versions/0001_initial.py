"""Initial schema, the Default experiment (id 0) and the change-sequence counter.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False, unique=True),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("trace_count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.BigInteger,
                  sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.BigInteger, nullable=False),
        sa.Column("client_request_id", sa.String(250)),
        sa.Column("request_time", sa.BigInteger, nullable=False),
        sa.Column("execution_duration", sa.BigInteger),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("name", sa.String(500)),
        sa.Column("root_span_id", sa.String(16)),
        sa.Column("request_preview", sa.Text),
        sa.Column("response_preview", sa.Text),
        sa.Column("session_id", sa.String(250)),
        sa.Column("user_id", sa.String(250)),
        sa.Column("span_count", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("total_tokens", sa.BigInteger),
        sa.Column("cost", sa.Float),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_traces_exp_time", "traces", ["experiment_id", "request_time", "trace_id"])
    op.create_index("ix_traces_exp_state_time", "traces", ["experiment_id", "state", "request_time"])
    op.create_index("ix_traces_client_request_id", "traces", ["client_request_id"])
    op.create_index("ix_traces_session", "traces", ["experiment_id", "session_id"])
    op.create_index("ix_traces_seq", "traces", ["seq"])

    for name in ("trace_tags", "trace_metadata"):
        op.create_table(
            name,
            sa.Column("trace_id", sa.String(64), primary_key=True),
            sa.Column("key", sa.String(250), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
        op.create_index(f"ix_{name}_key_value", name, ["key", "value"])

    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("span_type", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger, nullable=False),
        sa.Column("end_time_ns", sa.BigInteger),
        sa.Column("status_code", sa.String(8), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text),
        sa.Column("outputs", sa.Text),
        sa.Column("attributes", sa.Text),
        sa.Column("events", sa.Text),
        sa.Column("model", sa.String(250)),
        sa.Column("input_tokens", sa.BigInteger),
        sa.Column("output_tokens", sa.BigInteger),
        sa.Column("total_tokens", sa.BigInteger),
        sa.Column("cost", sa.Float),
        sa.Column("content_uri", sa.Text),
    )
    op.create_index("ix_spans_trace_start", "spans", ["trace_id", "start_time_ns"])
    op.create_index("ix_spans_name", "spans", ["name"])
    op.create_index("ix_spans_type", "spans", ["span_type"])

    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(64), primary_key=True),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("span_id", sa.String(16)),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("rationale", sa.Text),
        sa.Column("source_type", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(250), nullable=False),
        sa.Column("create_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("overrides", sa.String(64)),
        sa.Column("valid", sa.Boolean, nullable=False),
    )
    op.create_index("ix_assessments_trace", "assessments", ["trace_id"])
    op.create_index("ix_assessments_name", "assessments", ["name"])

    op.create_table(
        "rollups",
        sa.Column("experiment_id", sa.BigInteger, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("latency_sum_ms", sa.BigInteger, nullable=False),
        sa.Column("latency_buckets", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
    )
    op.create_table(
        "masking_rules",
        sa.Column("rule_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.BigInteger),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pattern", sa.Text, nullable=False),
        sa.Column("replacement", sa.Text, nullable=False),
    )
    server_state = op.create_table(
        "server_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )

    now = int(time.time() * 1000)
    # MLflow's default experiment has id 0; the artifact location is filled in by the store
    # at start, because only the server knows its artifact root.
    op.bulk_insert(experiments, [{
        "experiment_id": 0, "name": "Default", "artifact_location": "", "lifecycle_stage": "active",
        "creation_time": now, "last_update_time": now, "trace_count": 0,
    }])
    op.bulk_insert(server_state, [{"key": "trace_seq", "value": "0"}])


def downgrade() -> None:
    for name in ("server_state", "masking_rules", "rollups", "assessments", "spans", "trace_metadata",
                 "trace_tags", "traces", "experiment_tags", "experiments"):
        op.drop_table(name)
