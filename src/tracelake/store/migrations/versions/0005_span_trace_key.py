"""Spans keyed by an increasing integer trace key: span inserts append instead of scattering.

Trace ids are random. With spans keyed by ``(trace_id, span_id)`` (plus an index on
``(trace_id, start_time_ns)``) every span insert went to a random page of two b-trees; once
they outgrow the page cache each insert reads and rewrites pages, and each commit writes
hundreds of scattered pages to the WAL. ``traces.trace_key`` is handed out in increasing
order as traces are created, and spans are keyed by ``(trace_key, span_id)``: new spans land
at the end of one b-tree. Spans of one trace still sit together (that key's prefix), which
is all the readers need; ``(trace_id, start_time_ns)`` is gone (a trace's spans are sorted
after the prefix lookup). ``spans.trace_id`` is kept, unindexed, so rows stay readable alone
(lake sync, offload paths).

Revision ID: 0005_span_trace_key
Revises: 0004_write_path_indexes
Create Date: 2026-11-25
"""
from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0005_span_trace_key"
down_revision = "0004_write_path_indexes"
branch_labels = None
depends_on = None

_SPAN_COLUMNS = ("span_id", "trace_id", "parent_span_id", "name", "span_type", "kind", "start_time_ns",
                 "end_time_ns", "status_code", "status_message", "inputs", "outputs", "attributes", "events",
                 "model", "input_tokens", "output_tokens", "total_tokens", "cost", "content_uri", "seq")


def _span_table(name: str, *key: sa.Column) -> None:
    """A spans table whose primary key is ``key`` + ``span_id`` (the other columns as in 0003)."""
    op.create_table(
        name,
        *key,
        sa.Column("span_id", sa.String(16), primary_key=True),
        *([] if any(c.name == "trace_id" for c in key) else [sa.Column("trace_id", sa.String(64), nullable=False)]),
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
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def upgrade() -> None:
    op.add_column("traces", sa.Column("trace_key", sa.BigInteger))
    # Existing traces are numbered in creation order (UPDATE ... FROM: SQLite >= 3.33, PostgreSQL).
    op.execute("UPDATE traces SET trace_key = numbered.n FROM "
               "(SELECT trace_id, row_number() OVER (ORDER BY first_seq, request_time, trace_id) AS n "
               "FROM traces) AS numbered WHERE traces.trace_id = numbered.trace_id")
    op.create_index("ux_traces_trace_key", "traces", ["trace_key"], unique=True)

    _span_table("spans_keyed", sa.Column("trace_key", sa.BigInteger, primary_key=True, autoincrement=False))
    columns = ", ".join(_SPAN_COLUMNS)
    op.execute(f"INSERT INTO spans_keyed (trace_key, {columns}) "
               f"SELECT traces.trace_key, {', '.join('spans.' + c for c in _SPAN_COLUMNS)} "
               f"FROM spans JOIN traces ON traces.trace_id = spans.trace_id")
    op.drop_table("spans")
    op.rename_table("spans_keyed", "spans")
    op.create_index("ix_spans_seq", "spans", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_spans_seq", "spans")
    _span_table("spans_by_id", sa.Column("trace_id", sa.String(64), primary_key=True))
    columns = ", ".join(_SPAN_COLUMNS)
    op.execute(f"INSERT INTO spans_by_id ({columns}) SELECT {columns} FROM spans")
    op.drop_table("spans")
    op.rename_table("spans_by_id", "spans")
    op.create_index("ix_spans_trace_start", "spans", ["trace_id", "start_time_ns"])
    op.create_index("ix_spans_seq", "spans", ["seq"])
    op.drop_index("ux_traces_trace_key", "traces")
    with warnings.catch_warnings():  # SQLite rebuilds the table; the expression index is recreated below
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("traces") as batch:
            batch.drop_column("trace_key")
    if op.get_bind().dialect.name == "sqlite":  # the table was rebuilt: expression indexes are not carried over
        op.create_index("ix_traces_exp_duration", "traces",
                        ["experiment_id", sa.text("coalesce(execution_duration, -1)"), "trace_id"])
