"""First start with auth, the bind-safety check, the settings and the ``server`` flags."""
from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from tests.auth.helpers import ADMIN_PASSWORD, auth_settings, basic
from tracelake.auth.service import start_auth
from tracelake.commands import check_bind_safety, cli
from tracelake.server import create_app
from tracelake.settings import Settings
from tracelake.store.sql.store import SqlStore


def _store(tmp_path: Path) -> SqlStore:
    from tracelake.store.migrations import upgrade

    uri = f"sqlite:///{tmp_path}/t.db"
    upgrade(uri)
    return SqlStore(uri, artifact_root=str(tmp_path / "a"))


def test_first_start_creates_admin_with_the_given_password(tmp_path: Path) -> None:
    shown: list[str] = []
    store = _store(tmp_path)
    try:
        service = start_auth(auth_settings(store.engine.url.render_as_string(), tmp_path), store, shown.append)
        assert shown == []
        user = service.store.check_password("admin", ADMIN_PASSWORD)
        assert user is not None and user.is_admin
    finally:
        store.close()


def test_without_a_password_a_one_time_password_is_shown_once(tmp_path: Path) -> None:
    shown: list[str] = []
    store = _store(tmp_path)
    try:
        settings = auth_settings("sqlite:///unused", tmp_path, admin_password="")
        service = start_auth(settings, store, shown.append)
        (message,) = shown
        password = message.split("one-time password ")[1].split()[0]
        assert service.store.check_password("admin", password) is not None
        start_auth(settings, store, shown.append)  # second start: nothing new
        assert len(shown) == 1
        assert service.store.check_password("admin", password) is not None
    finally:
        store.close()


@pytest.mark.parametrize(("host", "auth", "insecure", "allowed"), [
    ("127.0.0.1", False, False, True),
    ("localhost", False, False, True),
    ("::1", False, False, True),
    ("0.0.0.0", False, False, False),
    ("10.1.2.3", False, False, False),
    ("0.0.0.0", True, False, True),
    ("0.0.0.0", False, True, True),
])
def test_binding_beyond_loopback_needs_auth_or_an_explicit_opt_out(host: str, auth: bool, insecure: bool,
                                                                    allowed: bool) -> None:
    settings = Settings(host=host, auth=auth, insecure_no_auth=insecure)
    if allowed:
        check_bind_safety(settings)
    else:
        with pytest.raises(click.UsageError):
            check_bind_safety(settings)


def test_the_admin_password_never_shows_in_a_repr() -> None:
    settings = Settings.load(environ={"TRACELAKE_ADMIN_PASSWORD": "s3cret-value", "TRACELAKE_AUTH": "1"})
    assert settings.admin_password == "s3cret-value" and settings.auth
    assert "s3cret-value" not in repr(settings)


def test_server_flags_turn_auth_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    started: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(app))
    result = CliRunner().invoke(cli, ["server", "--auth", "--admin-password", ADMIN_PASSWORD, "--host", "0.0.0.0",
                                      "--store", f"sqlite:///{tmp_path}/t.db", "--artifacts", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    (app,) = started
    assert app.state.auth.store.check_password("admin", ADMIN_PASSWORD) is not None


def test_server_refuses_a_public_bind_without_auth(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["server", "--host", "0.0.0.0", "--store", f"sqlite:///{tmp_path}/t.db"])
    assert result.exit_code == 2 and "--insecure-no-auth" in result.output


def test_with_auth_off_the_auth_api_says_so_and_nothing_needs_credentials(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/t.db", artifacts=str(tmp_path / "a"), lake=str(tmp_path / "l"))
    with TestClient(create_app(settings)) as client:
        r = client.get("/api/tracelake/users", headers=basic("admin", ADMIN_PASSWORD))
        assert r.status_code == 404 and "not enabled" in r.json()["message"]
        assert client.get("/login").status_code == 404
        assert client.get("/api/2.0/mlflow/experiments/search").status_code == 200
