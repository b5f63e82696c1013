"""``GrantStore``: principal (user | group) × securable × privilege.

A principal holds at most one privilege per securable (the top of what it was given on that
securable's ladder); a user's effective privilege is the highest of its own grant and its
groups' grants. Admins hold every privilege without grants.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select

from tracelake.auth.model import Grant, Principal, PrincipalType, SecurableType, privilege_rank
from tracelake.auth.schema import auth_grants, auth_groups, auth_users
from tracelake.auth.store import AuthStore, now_ms
from tracelake.errors import InvalidRequest


def parse_securable(securable_type: str) -> SecurableType:
    try:
        return SecurableType(securable_type)
    except ValueError:
        raise InvalidRequest(f"securable type must be one of {[t.value for t in SecurableType]}, "
                             f"got {securable_type!r}") from None


def parse_principal_type(principal_type: str) -> PrincipalType:
    try:
        return PrincipalType(principal_type)
    except ValueError:
        raise InvalidRequest(f"principal type must be 'user' or 'group', got {principal_type!r}") from None


def _principal_filter(principal: Principal) -> ColumnElement[bool]:
    clauses = [and_(auth_grants.c.principal_type == PrincipalType.USER.value,
                    auth_grants.c.principal_id == principal.user_id)]
    if principal.group_ids:
        clauses.append(and_(auth_grants.c.principal_type == PrincipalType.GROUP.value,
                            auth_grants.c.principal_id.in_(sorted(principal.group_ids))))
    return or_(*clauses)


class GrantStore:
    def __init__(self, users: AuthStore) -> None:
        self.users = users
        self.engine = users.engine

    def _principal_id(self, principal_type: PrincipalType, name: str) -> int:
        if principal_type is PrincipalType.USER:
            return self.users.require_user(name).user_id
        return self.users.require_group(name).group_id

    def set(self, principal_type: str, principal: str, securable_type: str, securable_id: str,
            privilege: str) -> Grant:
        """Give ``principal`` exactly ``privilege`` on the securable (replacing what it had there)."""
        ptype, stype = parse_principal_type(principal_type), parse_securable(securable_type)
        try:
            privilege_rank(stype, privilege)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if not securable_id:
            raise InvalidRequest("securable_id is required")
        pid = self._principal_id(ptype, principal)
        with self.users._write() as conn:
            conn.execute(delete(auth_grants).where(
                auth_grants.c.principal_type == ptype.value, auth_grants.c.principal_id == pid,
                auth_grants.c.securable_type == stype.value, auth_grants.c.securable_id == securable_id))
            conn.execute(insert(auth_grants).values(
                principal_type=ptype.value, principal_id=pid, securable_type=stype.value,
                securable_id=securable_id, privilege=privilege, created_at=now_ms()))
        return Grant(ptype, principal, stype, securable_id, privilege)

    def revoke(self, principal_type: str, principal: str, securable_type: str, securable_id: str) -> bool:
        ptype, stype = parse_principal_type(principal_type), parse_securable(securable_type)
        pid = self._principal_id(ptype, principal)
        with self.users._write() as conn:
            result = conn.execute(delete(auth_grants).where(
                auth_grants.c.principal_type == ptype.value, auth_grants.c.principal_id == pid,
                auth_grants.c.securable_type == stype.value, auth_grants.c.securable_id == securable_id))
        return bool(result.rowcount)

    def list(self, securable_type: str | None = None, securable_id: str | None = None) -> list[Grant]:
        query = select(auth_grants, auth_users.c.username, auth_groups.c.name.label("group_name")).outerjoin(
            auth_users, and_(auth_grants.c.principal_type == "user",
                             auth_users.c.user_id == auth_grants.c.principal_id)).outerjoin(
            auth_groups, and_(auth_grants.c.principal_type == "group",
                              auth_groups.c.group_id == auth_grants.c.principal_id))
        if securable_type is not None:
            query = query.where(auth_grants.c.securable_type == parse_securable(securable_type).value)
        if securable_id is not None:
            query = query.where(auth_grants.c.securable_id == securable_id)
        query = query.order_by(auth_grants.c.securable_type, auth_grants.c.securable_id, auth_grants.c.grant_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Grant(PrincipalType(r.principal_type), r.username if r.principal_type == "user" else r.group_name,
                      SecurableType(r.securable_type), r.securable_id, r.privilege) for r in rows]

    def ranks(self, principal: Principal, securable_type: SecurableType,
              securable_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Effective privilege rank per securable id (ids without a grant are absent)."""
        query = select(auth_grants.c.securable_id, auth_grants.c.privilege).where(
            auth_grants.c.securable_type == securable_type.value, _principal_filter(principal))
        if securable_ids is not None:
            ids = sorted(set(securable_ids))
            if not ids:
                return {}
            query = query.where(auth_grants.c.securable_id.in_(ids))
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for securable_id, privilege in conn.execute(query):
                try:
                    rank = privilege_rank(securable_type, privilege)
                except ValueError:  # a privilege this version does not know grants nothing
                    continue
                out[securable_id] = max(out.get(securable_id, 0), rank)
        return out

    def rank(self, principal: Principal, securable_type: SecurableType, securable_id: str) -> int:
        if principal.is_admin:
            return len_ladder(securable_type)
        return self.ranks(principal, securable_type, [securable_id]).get(securable_id, 0)


def len_ladder(securable_type: SecurableType) -> int:
    from tracelake.auth.model import PRIVILEGE_LADDERS

    return len(PRIVILEGE_LADDERS[securable_type])
