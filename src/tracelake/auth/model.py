"""Entities of authentication and authorisation.

Privileges form a ladder per securable type: holding a privilege implies every one below it.
Experiments: READ < EDIT < MANAGE. Lake tables: SELECT. Gateway endpoints: QUERY.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class PrincipalType(str, Enum):
    USER = "user"
    GROUP = "group"


class SecurableType(str, Enum):
    EXPERIMENT = "experiment"
    TABLE = "table"
    ENDPOINT = "endpoint"


PRIVILEGE_LADDERS: dict[SecurableType, tuple[str, ...]] = {
    SecurableType.EXPERIMENT: ("READ", "EDIT", "MANAGE"),
    SecurableType.TABLE: ("SELECT",),
    SecurableType.ENDPOINT: ("QUERY",),
}

READ, EDIT, MANAGE = PRIVILEGE_LADDERS[SecurableType.EXPERIMENT]


def privilege_rank(securable_type: SecurableType, privilege: str | None) -> int:
    """1-based rank of ``privilege`` on its ladder; 0 for none. Raises ValueError when unknown."""
    if privilege is None:
        return 0
    ladder = PRIVILEGE_LADDERS[securable_type]
    if privilege not in ladder:
        raise ValueError(f"privilege {privilege!r} does not apply to a {securable_type.value}; "
                         f"expected one of {list(ladder)}")
    return ladder.index(privilege) + 1


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    is_admin: bool
    is_active: bool
    created_at: int
    has_password: bool = True


@dataclass(frozen=True, slots=True)
class Group:
    group_id: int
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A personal access token as listed (never the secret)."""

    token_id: int
    username: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``secret`` is shown once and never stored."""

    info: TokenInfo
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Grant:
    principal_type: PrincipalType
    principal: str  # user name or group name
    securable_type: SecurableType
    securable_id: str
    privilege: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and how they proved it (``via``: token, basic or session)."""

    user_id: int
    username: str
    is_admin: bool
    group_ids: frozenset[int]
    via: str
    csrf_token: str | None = field(default=None, repr=False)  # sessions only


@dataclass(frozen=True, slots=True)
class NewSession:
    secret: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: int = 0
