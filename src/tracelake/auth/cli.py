"""``tracelake users|tokens|permissions``: manage auth straight in the store's database.

Each command migrates the database first (so it works before the first server start). Passwords
are prompted for (hidden) or read from stdin, never taken as arguments; a new token is printed
once, alone on stdout, so ``TOKEN=$(tracelake tokens create ...)`` works.
A running server sees changes to users and tokens within its credential cache TTL (10 s).
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from tracelake.auth.grants import GrantStore
from tracelake.auth.model import PRIVILEGE_LADDERS, SecurableType
from tracelake.auth.store import AuthStore
from tracelake.errors import TracelakeError
from tracelake.settings import Settings

_STORE_HELP = "Store URI [env TRACELAKE_STORE]."


@contextlib.contextmanager
def _auth_store(store: str | None) -> Iterator[AuthStore]:
    from tracelake.store.migrations import upgrade
    from tracelake.store.sql.engine import make_engine

    settings = Settings.load({"store": store})
    upgrade(settings.store)
    engine = make_engine(settings.store)
    try:
        yield AuthStore(engine)
    except TracelakeError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        engine.dispose()


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) if ms else "-"


store_option = click.option("--store", default=None, help=_STORE_HELP)


# -- users -----------------------------------------------------------------------------------------

@click.group()
def users() -> None:
    """Users and groups."""


@users.command("list")
@store_option
def users_list(store: str | None) -> None:
    """List users."""
    with _auth_store(store) as auth:
        for u in auth.list_users():
            click.echo(f"{u.username}\t{'admin' if u.is_admin else 'user'}\t{'active' if u.is_active else 'disabled'}")


@users.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
@click.option("--no-password", is_flag=True, help="No password: the user signs in with tokens only.")
@store_option
def users_create(username: str, admin: bool, password_stdin: bool, no_password: bool, store: str | None) -> None:
    """Create a user."""
    password = None if no_password else _password(password_stdin)
    with _auth_store(store) as auth:
        auth.create_user(username, password, is_admin=admin)
    click.echo(f"created user {username}", err=True)


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
@store_option
def users_set_password(username: str, password_stdin: bool, store: str | None) -> None:
    """Set a user's password (signs the user out of the UI everywhere)."""
    password = _password(password_stdin)
    with _auth_store(store) as auth:
        auth.update_user(username, password=password)
    click.echo(f"password of {username} changed", err=True)


@users.command("update")
@click.argument("username")
@click.option("--admin/--no-admin", default=None, help="Grant or remove admin.")
@click.option("--active/--disabled", default=None, help="Enable or disable the user.")
@store_option
def users_update(username: str, admin: bool | None, active: bool | None, store: str | None) -> None:
    """Change a user's admin flag or state."""
    with _auth_store(store) as auth:
        auth.update_user(username, is_admin=admin, is_active=active)


@users.command("delete")
@click.argument("username")
@store_option
def users_delete(username: str, store: str | None) -> None:
    """Delete a user with its tokens, sessions and grants."""
    with _auth_store(store) as auth:
        auth.delete_user(username)


@users.group("groups")
def groups() -> None:
    """Groups of users (grants to a group apply to its members)."""


@groups.command("list")
@store_option
def groups_list(store: str | None) -> None:
    with _auth_store(store) as auth:
        for g in auth.list_groups():
            click.echo(f"{g.name}\t{','.join(g.members)}")


@groups.command("create")
@click.argument("name")
@store_option
def groups_create(name: str, store: str | None) -> None:
    with _auth_store(store) as auth:
        auth.create_group(name)


@groups.command("delete")
@click.argument("name")
@store_option
def groups_delete(name: str, store: str | None) -> None:
    with _auth_store(store) as auth:
        auth.delete_group(name)


@groups.command("add")
@click.argument("group")
@click.argument("username")
@store_option
def groups_add(group: str, username: str, store: str | None) -> None:
    """Add a user to a group."""
    with _auth_store(store) as auth:
        auth.add_member(group, username)


@groups.command("remove")
@click.argument("group")
@click.argument("username")
@store_option
def groups_remove(group: str, username: str, store: str | None) -> None:
    """Remove a user from a group."""
    with _auth_store(store) as auth:
        auth.remove_member(group, username)


# -- tokens ----------------------------------------------------------------------------------------

@click.group()
def tokens() -> None:
    """Personal access tokens (for MLFLOW_TRACKING_TOKEN / Authorization: Bearer)."""


@tokens.command("create")
@click.option("--user", "username", required=True, help="Owner of the token.")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(0, 3650), default=90, show_default=True,
              help="Days until it expires (0 = never).")
@store_option
def tokens_create(username: str, name: str, expires_days: int, store: str | None) -> None:
    """Create a token and print it (once: only its hash is kept)."""
    expires = int(time.time() * 1000) + expires_days * 86_400_000 if expires_days else None
    with _auth_store(store) as auth:
        new = auth.create_token(username, name, expires)
    click.echo(f"token {new.info.token_id} for {username}, expires {_when(new.info.expires_at)}; "
               "copy it now, it is not shown again:", err=True)
    click.echo(new.secret)


@tokens.command("list")
@click.option("--user", "username", default=None, help="Only this user's tokens.")
@store_option
def tokens_list(username: str | None, store: str | None) -> None:
    with _auth_store(store) as auth:
        for t in auth.list_tokens(username):
            state = "revoked" if t.revoked_at else "active"
            click.echo(f"{t.token_id}\t{t.username}\t{t.name}\t{t.prefix}...\texpires {_when(t.expires_at)}\t"
                       f"last used {_when(t.last_used_at)}\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@store_option
def tokens_revoke(token_id: int, store: str | None) -> None:
    with _auth_store(store) as auth:
        auth.revoke_token(token_id)


# -- permissions -----------------------------------------------------------------------------------

def _securable(experiment: str | None, table: str | None, endpoint: str | None) -> tuple[str, str]:
    given = [(t, v) for t, v in ((SecurableType.EXPERIMENT, experiment), (SecurableType.TABLE, table),
                                 (SecurableType.ENDPOINT, endpoint)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --experiment, --table, --endpoint")
    return given[0][0].value, str(given[0][1])


def _principal(user: str | None, group: str | None) -> tuple[str, str]:
    if user and not group:
        return "user", user
    if group and not user:
        return "group", group
    raise click.UsageError("give exactly one of --user, --group")


_privileges = sorted({p for ladder in PRIVILEGE_LADDERS.values() for p in ladder})


def _securable_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in (click.option("--endpoint", default=None, help="Gateway endpoint name."),
                   click.option("--table", default=None, help="Lake table name."),
                   click.option("--experiment", default=None, help="Experiment id.")):
        f = option(f)
    return f


@click.group()
def permissions() -> None:
    """Grants: user|group × experiment|table|endpoint × privilege (experiments: READ < EDIT < MANAGE)."""


@permissions.command("grant")
@click.option("--user", default=None)
@click.option("--group", default=None)
@_securable_options
@click.option("--privilege", required=True, type=click.Choice(_privileges, case_sensitive=False))
@store_option
def permissions_grant(user: str | None, group: str | None, experiment: str | None, table: str | None,
                      endpoint: str | None, privilege: str, store: str | None) -> None:
    """Give a user or group a privilege (replacing what it had on that securable)."""
    ptype, pname = _principal(user, group)
    stype, sid = _securable(experiment, table, endpoint)
    with _auth_store(store) as auth:
        GrantStore(auth).set(ptype, pname, stype, sid, privilege.upper())


@permissions.command("revoke")
@click.option("--user", default=None)
@click.option("--group", default=None)
@_securable_options
@store_option
def permissions_revoke(user: str | None, group: str | None, experiment: str | None, table: str | None,
                       endpoint: str | None, store: str | None) -> None:
    ptype, pname = _principal(user, group)
    stype, sid = _securable(experiment, table, endpoint)
    with _auth_store(store) as auth:
        if not GrantStore(auth).revoke(ptype, pname, stype, sid):
            raise click.ClickException("no such grant")


@permissions.command("list")
@_securable_options
@store_option
def permissions_list(experiment: str | None, table: str | None, endpoint: str | None, store: str | None) -> None:
    stype, sid = _securable(experiment, table, endpoint) if (experiment or table or endpoint) else (None, None)
    with _auth_store(store) as auth:
        for g in GrantStore(auth).list(stype, sid):
            click.echo(f"{g.principal_type.value}:{g.principal}\t{g.securable_type.value}:{g.securable_id}\t"
                       f"{g.privilege}")


COMMANDS = (users, tokens, permissions)
