"""Credentials: bearer tokens, HTTP basic, the UI session with CSRF, rate limits, and secrets
that never reach a log."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.auth.conftest import create_user
from tests.auth.helpers import ADMIN_PASSWORD, USER_PASSWORD, auth_settings, basic, bearer
from tracelake.server import create_app

ME = "/api/tracelake/users/me"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """Auth on, over SQLite (these tests are about HTTP behaviour; storage runs on both databases
    in test_auth_store.py and the matrix)."""
    settings = auth_settings(f"sqlite:///{tmp_path}/t.db", tmp_path, login_max_failures=3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _login(client: TestClient, username: str, password: str, next_path: str = "/account") -> httpx.Response:
    csrf = _csrf_in(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf,
                                       "next": next_path}, follow_redirects=False)


def _session_csrf(client: TestClient) -> str:
    return _csrf_in(client.get("/account").text)


def _csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer tlk_not-a-real-token"}, 401),
    ({"Authorization": "Bearer "}, 401),
    ({"Authorization": "Basic !!!"}, 401),
    ({"Authorization": "Basic " + "bm9jb2xvbg=="}, 401),  # "nocolon"
    ({"Authorization": "Digest x"}, 401),
    (basic("admin", "wrong-password"), 401),
    (basic("admin", ADMIN_PASSWORD), 200),
])
def test_credentials_are_checked(client: TestClient, headers: dict[str, str], status: int) -> None:
    response = client.get(ME, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert response.headers["www-authenticate"] == 'Bearer realm="tracelake"'


def test_a_token_authenticates_as_its_owner(client: TestClient) -> None:
    token = create_user(client, "alice")
    body = client.get(ME, headers=bearer(token)).json()
    assert body["user"]["username"] == "alice" and body["via"] == "token"


def test_version_and_health_stay_public_even_with_a_wrong_token(client: TestClient) -> None:
    for path in ("/version", "/health"):
        assert client.get(path, headers=bearer("tlk_wrong")).status_code == 200


def test_a_revoked_token_is_refused_at_once(client: TestClient) -> None:
    token = create_user(client, "alice")
    assert client.get(ME, headers=bearer(token)).status_code == 200  # cached from here on
    (listed,) = client.get("/api/tracelake/tokens", headers=bearer(token)).json()["tokens"]
    assert client.delete(f"/api/tracelake/tokens/{listed['token_id']}", headers=bearer(token)).status_code == 200
    assert client.get(ME, headers=bearer(token)).status_code == 401


def test_a_disabled_user_is_refused_at_once(client: TestClient) -> None:
    token = create_user(client, "alice")
    assert client.get(ME, headers=bearer(token)).status_code == 200
    admin = basic("admin", ADMIN_PASSWORD)
    assert client.patch("/api/tracelake/users/alice", headers=admin, json={"is_active": False}).status_code == 200
    assert client.get(ME, headers=bearer(token)).status_code == 401
    assert client.get(ME, headers=basic("alice", USER_PASSWORD)).status_code == 401


def test_someone_elses_token_cannot_be_revoked_or_listed(client: TestClient) -> None:
    alice, bob = create_user(client, "alice"), create_user(client, "bob")
    (alices,) = client.get("/api/tracelake/tokens", headers=bearer(alice)).json()["tokens"]
    assert client.delete(f"/api/tracelake/tokens/{alices['token_id']}", headers=bearer(bob)).status_code == 404
    assert client.get("/api/tracelake/tokens", params={"username": "alice"}, headers=bearer(bob)).status_code == 404
    assert client.get(ME, headers=bearer(alice)).status_code == 200


def test_a_new_token_is_shown_once_and_never_listed(client: TestClient) -> None:
    token = create_user(client, "alice")
    created = client.post("/api/tracelake/tokens", headers=bearer(token), json={"name": "ci", "expires_in_days": 0})
    assert created.headers["cache-control"] == "no-store"
    secret = created.json()["token"]
    assert created.json()["token_info"]["expires_at"] is None
    listing = client.get("/api/tracelake/tokens", headers=bearer(token)).text
    assert secret not in listing and token not in listing


def test_failed_basic_logins_are_rate_limited(client: TestClient) -> None:
    for _ in range(3):
        assert client.get(ME, headers=basic("admin", "wrong-password")).status_code == 401
    limited = client.get(ME, headers=basic("admin", ADMIN_PASSWORD))  # even the right password now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_failed_form_logins_are_rate_limited(client: TestClient) -> None:
    for _ in range(3):
        assert _login(client, "admin", "wrong-password").status_code == 401
    assert _login(client, "admin", ADMIN_PASSWORD).status_code == 429


def test_changing_the_own_password_needs_the_current_one(client: TestClient) -> None:
    token = create_user(client, "alice")
    url = "/api/tracelake/users/me/password"
    wrong = client.post(url, headers=bearer(token), json={"current_password": "nope-nope", "new_password": "n3w-pass!"})
    assert wrong.status_code == 401
    ok = client.post(url, headers=bearer(token), json={"current_password": USER_PASSWORD, "new_password": "n3w-pass!"})
    assert ok.status_code == 200
    assert client.get(ME, headers=basic("alice", "n3w-pass!")).status_code == 200


# -- the UI session ------------------------------------------------------------------------------

def test_login_sets_an_httponly_samesite_session_cookie(client: TestClient) -> None:
    response = _login(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("tracelake_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    me = client.get(ME).json()
    assert me["user"]["username"] == "admin" and me["via"] == "session"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    assert _login(client, "admin", ADMIN_PASSWORD, target).headers["location"] == "/"


def test_login_needs_its_form_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": "forged"},
                           follow_redirects=False)
    assert response.status_code == 403
    assert "tracelake_session" not in client.cookies


def test_unsafe_cookie_requests_need_the_session_csrf_token(client: TestClient) -> None:
    _login(client, "admin", ADMIN_PASSWORD)
    body = {"name": "via-cookie"}
    assert client.post("/api/tracelake/groups", json=body).status_code == 403
    assert client.post("/api/tracelake/groups", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    ok = client.post("/api/tracelake/groups", json=body, headers={"X-CSRF-Token": _session_csrf(client)})
    assert ok.status_code == 200
    form = client.post("/admin", data={"action": "create_group", "name": "via-form",
                                       "csrf_token": _session_csrf(client)}, follow_redirects=False)
    assert form.status_code == 303
    names = [g["name"] for g in client.get("/api/tracelake/groups").json()["groups"]]
    assert names == ["via-cookie", "via-form"]


def test_logout_ends_the_session(client: TestClient) -> None:
    _login(client, "admin", ADMIN_PASSWORD)
    stolen = client.cookies.get("tracelake_session")
    csrf = _session_csrf(client)
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert client.get(ME, cookies={"tracelake_session": stolen}).status_code == 401


def test_a_page_sends_an_anonymous_caller_to_login(client: TestClient) -> None:
    response = client.get("/admin?tab=users", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fadmin%3Ftab%3Dusers"


def test_pages_escape_what_users_typed_and_are_not_cached(client: TestClient) -> None:
    admin = basic("admin", ADMIN_PASSWORD)
    assert client.post("/api/tracelake/users", headers=admin,
                       json={"username": "<i>x<i>", "password": USER_PASSWORD}).status_code == 200
    page = client.get("/admin", headers=admin)
    assert "&lt;i&gt;x&lt;i&gt;" in page.text and "<i>x<i>" not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_no_password_or_token_reaches_a_log(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = create_user(client, "alice")
    client.get(ME, headers=bearer(token))
    assert _login(client, "alice", USER_PASSWORD).status_code == 303
    session = client.cookies.get("tracelake_session")
    client.get(ME, headers=bearer(token + "x"))
    client.get(ME, headers=basic("alice", "a-wrong-password"))
    _login(client, "alice", "another-wrong-one")
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records  # failed sign-ins are logged ...
    for secret in (token, USER_PASSWORD, ADMIN_PASSWORD, "a-wrong-password", "another-wrong-one", session):
        assert secret and secret not in text  # ... without their secrets
