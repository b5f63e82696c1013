"""``AuthStore``: users, groups, personal access tokens and UI sessions in the SQL store.

Every method is synchronous (call it from a thread in async code). Listeners registered with
``on_change`` are called after any change that can alter who a credential stands for, so the
authenticator's cache never outlives a revocation made in this process.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tracelake.auth import passwords, tokens
from tracelake.auth.model import Group, NewSession, NewToken, TokenInfo, User
from tracelake.auth.schema import auth_group_members, auth_groups, auth_sessions, auth_tokens, auth_users
from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.sql.engine import WRITE

MAX_NAME_LENGTH = 150
RESERVED_NAMES = {"me"}  # /api/tracelake/users/me is the caller
# last_used_at is written at most this often per token: a busy ingest client must not turn
# every request into a write.
TOKEN_TOUCH_INTERVAL_MS = 60_000


def now_ms() -> int:
    return int(time.time() * 1000)


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest(f"a {kind} name must be a non-empty string")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(c in name for c in ":/\\\x00\r\n\t "):
        raise InvalidRequest(f"invalid {kind} name {name!r}: at most {MAX_NAME_LENGTH} characters, "
                             "no spaces, colons or slashes")
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequest(f"{name!r} is reserved")
    return name


def _user(row: Any) -> User:
    return User(user_id=int(row.user_id), username=row.username, is_admin=bool(row.is_admin),
                is_active=bool(row.is_active), created_at=int(row.created_at),
                has_password=row.password_hash is not None)


class AuthStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
            yield conn

    # -- users ---------------------------------------------------------------------------------

    def create_user(self, username: str, password: str | None, is_admin: bool = False) -> User:
        username = check_name("user", username)
        password_hash = passwords.hash_password(password) if password is not None else None
        try:
            with self._write() as conn:
                conn.execute(insert(auth_users).values(
                    username=username, password_hash=password_hash, is_admin=is_admin, is_active=True,
                    created_at=now_ms()))
        except IntegrityError:
            raise AlreadyExists(f"user {username!r} already exists") from None
        return self.require_user(username)

    def get_user(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_users).where(auth_users.c.username == username)).first()
        return _user(row) if row else None

    def require_user(self, username: str) -> User:
        user = self.get_user(username)
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    def get_user_by_id(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_users).where(auth_users.c.user_id == user_id)).first()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(auth_users).order_by(auth_users.c.username))]

    def count_admins(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(auth_users).where(
                auth_users.c.is_admin.is_(True), auth_users.c.is_active.is_(True))).scalar_one())

    def update_user(self, username: str, *, password: str | None = None, is_admin: bool | None = None,
                    is_active: bool | None = None) -> User:
        user = self.require_user(username)
        values: dict[str, Any] = {}
        if password is not None:
            values["password_hash"] = passwords.hash_password(password)
        if is_admin is not None:
            values["is_admin"] = is_admin
        if is_active is not None:
            values["is_active"] = is_active
        if (is_admin is False or is_active is False) and user.is_admin and self.count_admins() <= 1:
            raise InvalidRequest("refusing to remove the last active admin")
        if values:
            with self._write() as conn:
                conn.execute(update(auth_users).where(auth_users.c.user_id == user.user_id).values(**values))
                if password is not None or is_active is False:  # sign out everywhere
                    conn.execute(delete(auth_sessions).where(auth_sessions.c.user_id == user.user_id))
            self._changed()
        return self.require_user(username)

    def delete_user(self, username: str) -> None:
        user = self.require_user(username)
        if user.is_admin and self.count_admins() <= 1:
            raise InvalidRequest("refusing to delete the last active admin")
        from tracelake.auth.schema import auth_grants

        with self._write() as conn:
            # Deleted explicitly too: SQLite enforces ON DELETE CASCADE only with foreign keys on.
            for table in (auth_sessions, auth_tokens, auth_group_members):
                conn.execute(delete(table).where(table.c.user_id == user.user_id))
            conn.execute(delete(auth_grants).where(auth_grants.c.principal_type == "user",
                                                   auth_grants.c.principal_id == user.user_id))
            conn.execute(delete(auth_users).where(auth_users.c.user_id == user.user_id))
        self._changed()

    def check_password(self, username: str, password: str) -> User | None:
        """The active user whose password this is, else None (same cost whether or not the user exists)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_users).where(auth_users.c.username == username)).first()
        stored = row.password_hash if row is not None else None
        ok = passwords.verify_password(stored, password)
        if not ok or row is None or not row.is_active:
            return None
        if passwords.needs_rehash(stored):
            with self._write() as conn:
                conn.execute(update(auth_users).where(auth_users.c.user_id == row.user_id)
                             .values(password_hash=passwords.hash_password(password)))
        return _user(row)

    # -- groups --------------------------------------------------------------------------------

    def create_group(self, name: str) -> Group:
        name = check_name("group", name)
        try:
            with self._write() as conn:
                conn.execute(insert(auth_groups).values(name=name, created_at=now_ms()))
        except IntegrityError:
            raise AlreadyExists(f"group {name!r} already exists") from None
        return self.require_group(name)

    def require_group(self, name: str) -> Group:
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_groups).where(auth_groups.c.name == name)).first()
            if row is None:
                raise NotFound(f"no group named {name!r}")
            members = conn.execute(
                select(auth_users.c.username).join(auth_group_members,
                                                   auth_group_members.c.user_id == auth_users.c.user_id)
                .where(auth_group_members.c.group_id == row.group_id).order_by(auth_users.c.username)).scalars()
            return Group(int(row.group_id), row.name, tuple(members))

    def list_groups(self) -> list[Group]:
        with self.engine.connect() as conn:
            names = conn.execute(select(auth_groups.c.name).order_by(auth_groups.c.name)).scalars().all()
        return [self.require_group(n) for n in names]

    def delete_group(self, name: str) -> None:
        group = self.require_group(name)
        from tracelake.auth.schema import auth_grants

        with self._write() as conn:
            conn.execute(delete(auth_group_members).where(auth_group_members.c.group_id == group.group_id))
            conn.execute(delete(auth_grants).where(auth_grants.c.principal_type == "group",
                                                   auth_grants.c.principal_id == group.group_id))
            conn.execute(delete(auth_groups).where(auth_groups.c.group_id == group.group_id))
        self._changed()

    def add_member(self, group: str, username: str) -> None:
        g, u = self.require_group(group), self.require_user(username)
        if username in g.members:
            return
        with self._write() as conn:
            conn.execute(insert(auth_group_members).values(group_id=g.group_id, user_id=u.user_id))
        self._changed()

    def remove_member(self, group: str, username: str) -> None:
        g, u = self.require_group(group), self.require_user(username)
        with self._write() as conn:
            conn.execute(delete(auth_group_members).where(auth_group_members.c.group_id == g.group_id,
                                                          auth_group_members.c.user_id == u.user_id))
        self._changed()

    def group_ids(self, user_id: int) -> frozenset[int]:
        with self.engine.connect() as conn:
            return frozenset(int(g) for g in conn.execute(
                select(auth_group_members.c.group_id).where(auth_group_members.c.user_id == user_id)).scalars())

    # -- personal access tokens ----------------------------------------------------------------

    def create_token(self, username: str, name: str, expires_at: int | None) -> NewToken:
        user = self.require_user(username)
        if not isinstance(name, str) or not name.strip() or len(name) > 250:
            raise InvalidRequest("a token needs a name of 1 to 250 characters")
        if expires_at is not None and expires_at <= now_ms():
            raise InvalidRequest("a token's expiry must be in the future")
        secret = tokens.new_token()
        with self._write() as conn:
            token_id = conn.execute(insert(auth_tokens).values(
                user_id=user.user_id, name=name.strip(), token_hash=tokens.digest(secret),
                prefix=tokens.display_prefix(secret), created_at=now_ms(), expires_at=expires_at,
            ).returning(auth_tokens.c.token_id)).scalar_one()
        return NewToken(self.get_token(int(token_id)), secret)

    def _token_query(self) -> Select[Any]:
        return select(auth_tokens, auth_users.c.username).join(
            auth_users, auth_users.c.user_id == auth_tokens.c.user_id)

    @staticmethod
    def _token(row: Any) -> TokenInfo:
        return TokenInfo(token_id=int(row.token_id), username=row.username, name=row.name, prefix=row.prefix,
                         created_at=int(row.created_at), expires_at=row.expires_at, last_used_at=row.last_used_at,
                         revoked_at=row.revoked_at)

    def get_token(self, token_id: int) -> TokenInfo:
        with self.engine.connect() as conn:
            row = conn.execute(self._token_query().where(auth_tokens.c.token_id == token_id)).first()
        if row is None:
            raise NotFound(f"no token with id {token_id}")
        return self._token(row)

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        query = self._token_query().order_by(auth_tokens.c.token_id)
        if username is not None:
            query = query.where(auth_users.c.username == username)
        with self.engine.connect() as conn:
            return [self._token(r) for r in conn.execute(query)]

    def revoke_token(self, token_id: int) -> TokenInfo:
        token = self.get_token(token_id)
        if token.revoked_at is None:
            with self._write() as conn:
                conn.execute(update(auth_tokens).where(auth_tokens.c.token_id == token_id)
                             .values(revoked_at=now_ms()))
            self._changed()
        return self.get_token(token_id)

    def user_for_token(self, secret: str) -> User | None:
        """The active user a live token stands for; records its use."""
        if not secret.startswith(tokens.TOKEN_PREFIX):
            return None
        hashed = tokens.digest(secret)
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_tokens, auth_users).join(
                auth_users, auth_users.c.user_id == auth_tokens.c.user_id)
                .where(auth_tokens.c.token_hash == hashed)).first()
        now = now_ms()
        if (row is None or not tokens.same(row.token_hash, hashed) or row.revoked_at is not None
                or (row.expires_at is not None and row.expires_at <= now) or not row.is_active):
            return None
        if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL_MS:
            with self._write() as conn:
                conn.execute(update(auth_tokens).where(auth_tokens.c.token_id == row.token_id)
                             .values(last_used_at=now))
        return _user(row)

    # -- UI sessions ---------------------------------------------------------------------------

    def create_session(self, user_id: int, ttl_s: float) -> NewSession:
        secret, csrf = tokens.new_secret(), tokens.new_secret()
        now = now_ms()
        expires = now + int(ttl_s * 1000)
        with self._write() as conn:
            conn.execute(delete(auth_sessions).where(auth_sessions.c.expires_at <= now))
            conn.execute(insert(auth_sessions).values(session_hash=tokens.digest(secret), user_id=user_id,
                                                      csrf_token=csrf, created_at=now, expires_at=expires))
        return NewSession(secret, csrf, expires)

    def session_user(self, secret: str) -> tuple[User, str] | None:
        """(user, CSRF token) of a live session, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(auth_sessions, auth_users).join(
                auth_users, auth_users.c.user_id == auth_sessions.c.user_id)
                .where(auth_sessions.c.session_hash == tokens.digest(secret))).first()
        if row is None or row.expires_at <= now_ms() or not row.is_active:
            return None
        return _user(row), row.csrf_token

    def delete_session(self, secret: str) -> None:
        with self._write() as conn:
            conn.execute(delete(auth_sessions).where(auth_sessions.c.session_hash == tokens.digest(secret)))
        self._changed()
