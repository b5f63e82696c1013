"""``tracelake users|tokens|permissions`` against the store's database."""
from __future__ import annotations

from click.testing import CliRunner

from tracelake.auth.grants import GrantStore
from tracelake.auth.store import AuthStore
from tracelake.commands import cli
from tracelake.store.sql.engine import make_engine


def _run(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_users_tokens_and_permissions_from_the_cli(store_uri: str) -> None:
    s = ("--store", store_uri)
    _run("users", "create", "alice", "--password-stdin", *s, input="alice-password\n")
    _run("users", "create", "root", "--admin", *s, input="root-password\nroot-password\n")
    assert _run("users", "list", *s).splitlines() == ["alice\tuser\tactive", "root\tadmin\tactive"]
    _run("users", "groups", "create", "team", *s)
    _run("users", "groups", "add", "team", "alice", *s)
    assert _run("users", "groups", "list", *s).strip() == "team\talice"

    token = _run("tokens", "create", "--user", "alice", "--name", "ci", *s).strip()
    assert token.startswith("tlk_")
    listing = _run("tokens", "list", "--user", "alice", *s)
    assert "ci" in listing and token not in listing and "active" in listing

    _run("permissions", "grant", "--group", "team", "--experiment", "0", "--privilege", "edit", *s)
    _run("permissions", "grant", "--user", "alice", "--table", "main.traces", "--privilege", "SELECT", *s)
    assert _run("permissions", "list", "--experiment", "0", *s).strip() == "group:team\texperiment:0\tEDIT"

    engine = make_engine(store_uri)
    try:
        auth = AuthStore(engine)
        user = auth.user_for_token(token)
        assert user is not None and user.username == "alice"
        assert auth.check_password("alice", "alice-password") is not None
        assert len(GrantStore(auth).list()) == 2
        token_id = auth.list_tokens("alice")[0].token_id
    finally:
        engine.dispose()

    _run("tokens", "revoke", str(token_id), *s)
    _run("permissions", "revoke", "--group", "team", "--experiment", "0", *s)
    assert _run("permissions", "list", "--experiment", "0", *s) == ""
    engine = make_engine(store_uri)
    try:
        assert AuthStore(engine).user_for_token(token) is None
    finally:
        engine.dispose()


def test_cli_errors_are_messages_not_tracebacks(tmp_path) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    result = CliRunner().invoke(cli, ["users", "delete", "ghost", "--store", store])
    assert result.exit_code == 1 and "no user named 'ghost'" in result.output
    result = CliRunner().invoke(cli, ["permissions", "grant", "--user", "x", "--privilege", "READ", "--store", store])
    assert result.exit_code == 2 and "exactly one of --experiment" in result.output
