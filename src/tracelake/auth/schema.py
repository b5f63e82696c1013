"""Tables of users, groups, tokens, sessions and grants, on the store's ``MetaData``.

Created by the ``0002_auth`` migration. Secrets are never stored: passwords as argon2 hashes,
personal access tokens and session ids as SHA-256 hex digests (they are 256-bit random values,
so a fast hash is enough).

Grants are generic: principal (user | group) × securable (experiment | table | endpoint) ×
privilege. Experiments use the ladder READ < EDIT < MANAGE; lake tables (SELECT) and gateway
endpoints (QUERY) plug into the same table.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from tracelake.store.sql.schema import metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

auth_users = Table(
    "auth_users",
    metadata,
    Column("user_id", _ID, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", Text),  # NULL: the user signs in with tokens only
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),  # ms
)

auth_groups = Table(
    "auth_groups",
    metadata,
    Column("group_id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(150), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

auth_group_members = Table(
    "auth_group_members",
    metadata,
    Column("group_id", BigInteger, ForeignKey("auth_groups.group_id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("auth_users.user_id", ondelete="CASCADE"), primary_key=True),
)
Index("ix_auth_group_members_user", auth_group_members.c.user_id)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_id", _ID, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown in listings, to tell tokens apart
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),  # NULL: never
    Column("last_used_at", BigInteger),
    Column("revoked_at", BigInteger),
)
Index("ix_auth_tokens_user", auth_tokens.c.user_id)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("auth_users.user_id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_auth_sessions_user", auth_sessions.c.user_id)

auth_grants = Table(
    "auth_grants",
    metadata,
    Column("grant_id", _ID, primary_key=True, autoincrement=True),
    Column("principal_type", String(16), nullable=False),  # user | group
    Column("principal_id", BigInteger, nullable=False),
    Column("securable_type", String(32), nullable=False),  # experiment | table | endpoint
    Column("securable_id", String(500), nullable=False),
    Column("privilege", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("principal_type", "principal_id", "securable_type", "securable_id", "privilege",
                     name="uq_auth_grants"),
)
Index("ix_auth_grants_securable", auth_grants.c.securable_type, auth_grants.c.securable_id)
Index("ix_auth_grants_principal", auth_grants.c.principal_type, auth_grants.c.principal_id)

__all__ = ["auth_grants", "auth_group_members", "auth_groups", "auth_sessions", "auth_tokens", "auth_users"]
