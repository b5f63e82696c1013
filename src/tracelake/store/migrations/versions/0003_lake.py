"""Change tracking for the lake sync: per-span seq, the seq that created a trace, tombstones.

Revision ID: 0003_lake
Revises: 0002_auth
Create Date: 2025-02-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_lake"
down_revision = "0002_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traces") as batch:
        batch.add_column(sa.Column("first_seq", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("spans") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"))
    # Existing rows: a span and a trace were last changed no later than the trace's seq.
    op.execute("UPDATE traces SET first_seq = seq")
    op.execute("UPDATE spans SET seq = (SELECT t.seq FROM traces t WHERE t.trace_id = spans.trace_id) "
               "WHERE EXISTS (SELECT 1 FROM traces t WHERE t.trace_id = spans.trace_id)")
    with op.batch_alter_table("traces") as batch:
        batch.alter_column("first_seq", server_default=None)
    with op.batch_alter_table("spans") as batch:
        batch.alter_column("seq", server_default=None)
    op.create_index("ix_spans_seq", "spans", ["seq"])
    op.create_table(
        "trace_tombstones",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("experiment_id", sa.BigInteger, nullable=False),
        sa.Column("request_time", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_trace_tombstones_seq", "trace_tombstones", ["seq"])


def downgrade() -> None:
    op.drop_table("trace_tombstones")
    op.drop_index("ix_spans_seq", "spans")
    with op.batch_alter_table("spans") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("traces") as batch:
        batch.drop_column("first_seq")
