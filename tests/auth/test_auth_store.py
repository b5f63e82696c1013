"""Users, groups, tokens, sessions and grants in the store's database (SQLite and PostgreSQL)."""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

import tracelake.auth.schema  # noqa: F401  (puts the auth tables on the shared MetaData)
from tracelake.auth import passwords
from tracelake.auth.grants import GrantStore
from tracelake.auth.model import Principal, SecurableType
from tracelake.auth.schema import auth_tokens, auth_users
from tracelake.auth.store import AuthStore
from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.migrations import upgrade
from tracelake.store.sql.engine import make_engine
from tracelake.store.sql.schema import metadata

PW = "correct-horse-1"


@pytest.fixture
def auth(store_uri: str) -> Iterator[AuthStore]:
    upgrade(store_uri)
    engine = make_engine(store_uri)
    try:
        yield AuthStore(engine)
    finally:
        engine.dispose()


def _principal(auth: AuthStore, username: str) -> Principal:
    user = auth.require_user(username)
    return Principal(user.user_id, user.username, user.is_admin, auth.group_ids(user.user_id), "token")


def test_migration_creates_the_auth_tables_as_declared(store_uri: str) -> None:
    upgrade(store_uri)
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            # Expression indexes cannot be reflected; the store's migration test checks them by name.
            opts = {"compare_type": True,
                    "include_object": lambda obj, name, kind, reflected, other: name != "ix_traces_exp_duration"}
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
                warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
                diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_passwords_are_stored_as_argon2id_hashes(auth: AuthStore) -> None:
    auth.create_user("alice", PW)
    with auth.engine.connect() as conn:
        stored = conn.execute(select(auth_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored
    assert auth.check_password("alice", PW) is not None
    assert auth.check_password("alice", PW + "x") is None
    assert auth.check_password("nobody", PW) is None


def test_an_unknown_user_costs_one_argon2_verification_too(auth: AuthStore, monkeypatch) -> None:
    real = passwords._hasher
    calls: list[str] = []

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    assert auth.check_password("nobody", PW) is None
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["", "a b", "a:b", "a/b", "me", "x" * 151])
def test_bad_user_names_are_refused(auth: AuthStore, name: str) -> None:
    with pytest.raises(InvalidRequest):
        auth.create_user(name, PW)


def test_short_passwords_and_duplicate_users_are_refused(auth: AuthStore) -> None:
    with pytest.raises(InvalidRequest):
        auth.create_user("alice", "short")
    auth.create_user("alice", PW)
    with pytest.raises(AlreadyExists):
        auth.create_user("alice", PW)


def test_a_disabled_user_cannot_sign_in(auth: AuthStore) -> None:
    auth.create_user("root", PW, is_admin=True)
    auth.create_user("alice", PW)
    auth.update_user("alice", is_active=False)
    assert auth.check_password("alice", PW) is None


def test_the_last_admin_cannot_be_removed(auth: AuthStore) -> None:
    auth.create_user("root", PW, is_admin=True)
    for change in ({"is_admin": False}, {"is_active": False}):
        with pytest.raises(InvalidRequest):
            auth.update_user("root", **change)
    with pytest.raises(InvalidRequest):
        auth.delete_user("root")


def test_tokens_are_stored_hashed_and_resolve_until_revoked(auth: AuthStore) -> None:
    auth.create_user("alice", PW)
    new = auth.create_token("alice", "ci", None)
    with auth.engine.connect() as conn:
        row = conn.execute(select(auth_tokens)).one()
    assert new.secret not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    assert new.secret.startswith(new.info.prefix)
    user = auth.user_for_token(new.secret)
    assert user is not None and user.username == "alice"
    assert auth.get_token(new.info.token_id).last_used_at is not None
    auth.revoke_token(new.info.token_id)
    assert auth.user_for_token(new.secret) is None
    assert auth.user_for_token(new.secret[:-1] + "x") is None


def test_an_expired_token_does_not_resolve(auth: AuthStore) -> None:
    auth.create_user("alice", PW)
    new = auth.create_token("alice", "short-lived", int(time.time() * 1000) + 50)
    time.sleep(0.1)
    assert auth.user_for_token(new.secret) is None
    with pytest.raises(InvalidRequest):
        auth.create_token("alice", "past", int(time.time() * 1000) - 1)


def test_sessions_resolve_until_deleted_or_password_changed(auth: AuthStore) -> None:
    user = auth.create_user("alice", PW)
    session = auth.create_session(user.user_id, 60)
    found = auth.session_user(session.secret)
    assert found is not None and found[0].username == "alice" and found[1] == session.csrf_token
    auth.update_user("alice", password=PW + "2")
    assert auth.session_user(session.secret) is None
    again = auth.create_session(user.user_id, 60)
    auth.delete_session(again.secret)
    assert auth.session_user(again.secret) is None


def test_grants_form_a_ladder_and_groups_pass_them_on(auth: AuthStore) -> None:
    grants = GrantStore(auth)
    auth.create_user("alice", PW)
    auth.create_group("team")
    exp = SecurableType.EXPERIMENT
    grants.set("user", "alice", "experiment", "1", "READ")
    assert grants.rank(_principal(auth, "alice"), exp, "1") == 1
    grants.set("user", "alice", "experiment", "1", "EDIT")  # replaces, never piles up
    assert [g.privilege for g in grants.list("experiment", "1")] == ["EDIT"]
    grants.set("group", "team", "experiment", "1", "MANAGE")
    assert grants.rank(_principal(auth, "alice"), exp, "1") == 2
    auth.add_member("team", "alice")
    assert grants.rank(_principal(auth, "alice"), exp, "1") == 3
    assert grants.rank(_principal(auth, "alice"), exp, "2") == 0
    assert grants.revoke("group", "team", "experiment", "1")
    assert grants.rank(_principal(auth, "alice"), exp, "1") == 2


def test_grants_are_generic_over_securables(auth: AuthStore) -> None:
    grants = GrantStore(auth)
    auth.create_user("alice", PW)
    grants.set("user", "alice", "table", "main.traces", "SELECT")
    grants.set("user", "alice", "endpoint", "chat", "QUERY")
    assert grants.rank(_principal(auth, "alice"), SecurableType.TABLE, "main.traces") == 1
    assert grants.rank(_principal(auth, "alice"), SecurableType.ENDPOINT, "chat") == 1
    with pytest.raises(InvalidRequest):
        grants.set("user", "alice", "table", "main.traces", "MANAGE")
    with pytest.raises(InvalidRequest):
        grants.set("user", "alice", "notebook", "x", "READ")
    with pytest.raises(NotFound):
        grants.set("user", "ghost", "experiment", "1", "READ")


def test_deleting_a_user_removes_its_tokens_and_grants(auth: AuthStore) -> None:
    grants = GrantStore(auth)
    auth.create_user("alice", PW)
    auth.create_group("team")
    auth.add_member("team", "alice")
    token = auth.create_token("alice", "t", None)
    grants.set("user", "alice", "experiment", "1", "READ")
    auth.delete_user("alice")
    assert auth.user_for_token(token.secret) is None
    assert grants.list() == [] and auth.require_group("team").members == ()
