"""Authentication and authorisation for the server.

- ``passwords``: argon2id hashing; ``tokens``: random secrets stored as SHA-256 digests.
- ``schema`` / ``store`` / ``grants``: users, groups, personal access tokens, UI sessions and
  grants (principal × securable × privilege) in the store's database.
- ``authenticate``: Bearer tokens, HTTP basic and the session cookie → ``Principal``, with
  failed sign-ins rate limited (``ratelimit``).
- ``middleware``: enforces ``tracelake.server.permissions`` (one rule per route).
- ``service``: the per-app ``AuthService`` and the first admin; ``cli``: ``tracelake users|tokens|permissions``.
"""
from __future__ import annotations

from tracelake.auth.context import current_principal, readable_experiment_ids
from tracelake.auth.model import (
    EDIT,
    MANAGE,
    PRIVILEGE_LADDERS,
    READ,
    Grant,
    Group,
    NewToken,
    Principal,
    PrincipalType,
    SecurableType,
    TokenInfo,
    User,
)

__all__ = ["EDIT", "MANAGE", "PRIVILEGE_LADDERS", "READ", "Grant", "Group", "NewToken", "Principal",
           "PrincipalType", "SecurableType", "TokenInfo", "User", "current_principal", "readable_experiment_ids"]
