"""Authentication and authorisation: users, groups, tokens, sessions, grants.

Revision ID: 0002_auth
Revises: 0001_initial
Create Date: 2025-02-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_auth"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("user_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "auth_groups",
        sa.Column("group_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(150), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "auth_group_members",
        sa.Column("group_id", sa.BigInteger, sa.ForeignKey("auth_groups.group_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("ix_auth_group_members_user", "auth_group_members", ["user_id"])
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_index("ix_auth_tokens_user", "auth_tokens", ["user_id"])
    op.create_table(
        "auth_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, sa.ForeignKey("auth_users.user_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_sessions_user", "auth_sessions", ["user_id"])
    op.create_table(
        "auth_grants",
        sa.Column("grant_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.BigInteger, nullable=False),
        sa.Column("securable_type", sa.String(32), nullable=False),
        sa.Column("securable_id", sa.String(500), nullable=False),
        sa.Column("privilege", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("principal_type", "principal_id", "securable_type", "securable_id", "privilege",
                            name="uq_auth_grants"),
    )
    op.create_index("ix_auth_grants_securable", "auth_grants", ["securable_type", "securable_id"])
    op.create_index("ix_auth_grants_principal", "auth_grants", ["principal_type", "principal_id"])


def downgrade() -> None:
    for name in ("auth_grants", "auth_sessions", "auth_tokens", "auth_group_members", "auth_groups", "auth_users"):
        op.drop_table(name)
