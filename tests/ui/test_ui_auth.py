"""The web UI with auth on (``tracelake server --auth``): listings scoped to what the caller may
read, an unreadable experiment's pages exactly like a missing one's, the CSRF header on every
unsafe request the UI's scripts send, and the user menu.

A real server (uvicorn, SQLite, auth on) in a thread; the browser signs in through the real
login form in real Chromium.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
import uvicorn
from playwright.sync_api import Page, Request, expect

from tests.auth.helpers import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    auth_settings,
    basic,
    bearer,
    new_trace_hex,
    otlp_json,
)
from tests.ui.conftest import Problems, Server, _free_port, shot
from tracelake.server import create_app

USERS = ("reader", "editor")


@dataclass
class AuthWorld:
    url: str
    http: httpx.Client  # no credentials: each call says who it is
    tokens: dict[str, str]
    a: str  # experiment id the reader may READ and the editor may EDIT
    b: str  # experiment id neither may read
    a_name: str
    b_name: str
    a_trace: str
    b_trace: str

    def as_(self, role: str) -> dict[str, str]:
        return basic("admin", ADMIN_PASSWORD) if role == "admin" else bearer(self.tokens[role])


def _log_trace(http: httpx.Client, experiment_id: str) -> str:
    trace_hex = new_trace_hex()
    r = http.post("/v1/traces", content=otlp_json(trace_hex, name="answer", resource={"service.name": "t"}),
                  headers={**basic("admin", ADMIN_PASSWORD), "content-type": "application/json",
                           "x-tracelake-experiment-id": experiment_id})
    assert r.status_code == 200, r.text
    return "tr-" + trace_hex


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthWorld]:
    root = tmp_path_factory.mktemp("ui-auth")
    app = create_app(auth_settings(f"sqlite:///{root}/tracelake.db", root))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, name="ui-auth-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    admin = basic("admin", ADMIN_PASSWORD)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            tokens = {}
            for user in USERS:
                r = http.post("/api/tracelake/users", headers=admin, json={"username": user, "password": USER_PASSWORD})
                assert r.status_code == 200, r.text
                r = http.post("/api/tracelake/tokens", headers=admin, json={"name": "tests", "username": user})
                assert r.status_code == 200, r.text
                tokens[user] = r.json()["token"]
            ids, names = [], []
            for label in ("a", "b"):
                name = f"auth-{label}-{new_trace_hex()[:8]}"
                r = http.post("/api/2.0/mlflow/experiments/create", headers=admin, json={"name": name})
                assert r.status_code == 200, r.text
                ids.append(r.json()["experiment_id"])
                names.append(name)
            for user, privilege in (("reader", "READ"), ("editor", "EDIT")):
                r = http.post("/api/tracelake/permissions", headers=admin, json={
                    "principal_type": "user", "principal": user, "securable_type": "experiment",
                    "securable_id": ids[0], "privilege": privilege})
                assert r.status_code == 200, r.text
            yield AuthWorld(url, http, tokens, ids[0], ids[1], names[0], names[1],
                            _log_trace(http, ids[0]), _log_trace(http, ids[1]))
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def browser_page(page: Page, problems: Problems) -> Iterator[Page]:
    """A page that fails the test on any script error, CSP violation or failed request."""
    page.on("pageerror", lambda exc: problems.seen.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.seen.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.set_default_timeout(15_000)
    yield page
    assert not problems.unexpected(), "\n".join(problems.unexpected())


def _sign_in(page: Page, w: AuthWorld, username: str, target: str) -> None:
    """Open ``target`` signed out, get sent to the login form, sign in there, land on ``target``."""
    page.goto(w.url + target)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(USER_PASSWORD)
    page.locator('button[type="submit"]').click()
    expect(page).to_have_url(w.url + target)


def _normalized(html: str, *ids: str) -> str:
    for i in ids:
        html = html.replace(f"'{i}'", "'ID'").replace(f"&#39;{i}&#39;", "'ID'")
    return re.sub(r'nonce="[^"]+"', 'nonce=""', html)


# -- without a browser ---------------------------------------------------------------------------

def test_anonymous_callers_are_sent_to_sign_in(world: AuthWorld) -> None:
    for path in ("/", f"/experiments/{world.a}", f"/experiments/{world.b}/traces/{world.b_trace}",
                 f"/experiments/{world.b}/monitoring"):
        r = world.http.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=")
        assert world.b_name not in r.text
    r = world.http.get("/api/tracelake/experiments")
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("role", ["reader", "editor"])
def test_listings_show_only_readable_experiments(world: AuthWorld, role: str) -> None:
    page = world.http.get("/", headers=world.as_(role))
    assert page.status_code == 200
    assert world.a_name in page.text
    assert world.b_name not in page.text
    assert f"/experiments/{world.b}\"" not in page.text
    listed = world.http.get("/api/tracelake/experiments", headers=world.as_(role))
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["experiments"]] == [world.a]


def test_an_admin_sees_every_experiment(world: AuthWorld) -> None:
    page = world.http.get("/", headers=world.as_("admin"))
    assert world.a_name in page.text and world.b_name in page.text
    listed = {e["id"] for e in world.http.get("/api/tracelake/experiments", headers=world.as_("admin"))
              .json()["experiments"]}
    assert {world.a, world.b} <= listed


def test_a_user_without_grants_sees_no_experiment(world: AuthWorld) -> None:
    admin = world.as_("admin")
    r = world.http.post("/api/tracelake/users", headers=admin, json={"username": "nobody", "password": USER_PASSWORD})
    assert r.status_code == 200, r.text
    page = world.http.get("/", auth=("nobody", USER_PASSWORD))
    assert page.status_code == 200
    assert world.a_name not in page.text and world.b_name not in page.text
    listed = world.http.get("/api/tracelake/experiments", auth=("nobody", USER_PASSWORD))
    assert listed.json() == {"experiments": []}


def test_an_unreadable_experiments_pages_are_the_html_404_page(world: AuthWorld) -> None:
    reader = world.as_("reader")
    missing = "987654321"
    for suffix in ("", "/sessions", "/sessions/some-session", "/monitoring"):
        hidden = world.http.get(f"/experiments/{world.b}{suffix}", headers=reader)
        absent = world.http.get(f"/experiments/{missing}{suffix}", headers=reader)
        assert hidden.status_code == absent.status_code == 404, suffix
        assert hidden.headers["content-type"].startswith("text/html")
        assert "404 · Not found" in hidden.text
        assert f"No experiment with id &#39;{world.b}&#39;" in hidden.text
        assert world.b_name not in hidden.text and "permission" not in hidden.text.lower()
        # nothing but the id in the message tells an unreadable experiment from a missing one
        assert _normalized(hidden.text, world.b) == _normalized(absent.text, missing)
        assert hidden.headers["content-security-policy"].split("nonce-")[0] == \
            absent.headers["content-security-policy"].split("nonce-")[0]
    # B's trace, under B or under A (the page would otherwise redirect to B)
    for path in (f"/experiments/{world.b}/traces/{world.b_trace}", f"/experiments/{world.a}/traces/{world.b_trace}"):
        r = world.http.get(path, headers=reader, follow_redirects=False)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html")
        assert "404 · Not found" in r.text
    # the user menu is on the 404 page as on any other
    assert "reader" in world.http.get(f"/experiments/{world.b}", headers=reader).text


def test_an_unreadable_experiments_json_is_a_404(world: AuthWorld) -> None:
    reader = world.as_("reader")
    for path in (f"/api/tracelake/experiments/{world.b}/traces", f"/api/tracelake/experiments/{world.b}/changes",
                 f"/api/tracelake/experiments/{world.b}/sessions", f"/api/tracelake/experiments/{world.b}/metrics",
                 f"/api/tracelake/traces/{world.b_trace}", f"/api/tracelake/traces/{world.b_trace}/spans"):
        r = world.http.get(path, headers=reader)
        assert r.status_code == 404, path
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", path
        assert "permission" not in r.text.lower()
    r = world.http.post("/api/tracelake/traces/export", headers=reader, json={"trace_ids": [world.b_trace]})
    assert r.status_code == 404
    # while A's are there
    assert world.http.get(f"/api/tracelake/experiments/{world.a}/traces", headers=reader).json()["traces"]
    assert world.http.get(f"/experiments/{world.a}/traces/{world.a_trace}", headers=reader).status_code == 200


def test_pages_render_no_csrf_token_for_token_callers(world: AuthWorld) -> None:
    """A bearer token is not a browser session: no CSRF token to render, none needed."""
    page = world.http.get(f"/experiments/{world.a}", headers=world.as_("editor"))
    assert 'name="csrf-token"' not in page.text
    r = world.http.patch(f"/api/2.0/mlflow/traces/{world.a_trace}/tags", headers=world.as_("editor"),
                         json={"key": "via", "value": "token"})
    assert r.status_code == 200, r.text


def test_without_auth_pages_have_no_token_and_no_user_menu(server: Server) -> None:
    experiment_id = server.create_experiment("noauth")
    for path in ("/", f"/experiments/{experiment_id}"):
        page = server.http.get(path)
        assert page.status_code == 200
        assert 'name="csrf-token"' not in page.text
        assert "user-menu" not in page.text and "/logout" not in page.text


# -- in the browser ------------------------------------------------------------------------------

def test_a_signed_in_browser_sends_the_csrf_token_on_every_change(browser_page: Page, world: AuthWorld) -> None:
    ui = browser_page
    _sign_in(ui, world, "editor", f"/experiments/{world.a}/traces/{world.a_trace}")
    unsafe: list[Request] = []  # what the page's scripts send from now on
    ui.on("request", lambda r: unsafe.append(r) if r.method not in ("GET", "HEAD") else None)
    token = ui.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token

    tag_form = ui.locator("#tag-form")
    tag_form.locator('input[name="key"]').fill("reviewed")
    tag_form.locator('input[name="value"]').fill("yes")
    tag_form.locator("button[type=submit]").click()
    expect(ui.locator('#tags .chip[data-key="reviewed"]')).to_have_text("reviewed=yes")

    form = ui.locator("#feedback-form")
    form.locator('[data-thumb="up"]').click()
    form.locator('input[name="comment"]').fill("Right answer.")
    form.locator("button[type=submit]").click()
    item = ui.locator("#assessments .assessment")
    expect(item).to_have_count(1)
    expect(item.locator(".rationale")).to_have_text("Right answer.")
    shot(ui, "auth-trace-feedback", full_page=True)

    sent = [(r.method, r.url.replace(world.url, "")) for r in unsafe]
    assert sent == [("PATCH", f"/api/2.0/mlflow/traces/{world.a_trace}/tags"),
                    ("POST", f"/api/3.0/mlflow/traces/{world.a_trace}/assessments")]
    assert all(r.headers.get("x-csrf-token") == token for r in unsafe), sent

    admin = world.as_("admin")
    info = world.http.get(f"/api/3.0/mlflow/traces/{world.a_trace}", headers=admin).json()["trace"]["trace_info"]
    assert info["tags"]["reviewed"] == "yes"
    assert [(a["feedback"]["value"], a.get("rationale")) for a in info["assessments"]] == [(True, "Right answer.")]

    # the same requests riding on the same session cookie, without the header (or with a wrong one): refused
    body = {"assessment": {"trace_id": world.a_trace, "assessment_name": "forged", "feedback": {"value": False},
                           "source": {"source_type": "HUMAN", "source_id": "attacker"}}}
    json_type = {"content-type": "application/json"}
    for headers in (json_type, {**json_type, "X-CSRF-Token": "not-the-token"}):
        r = ui.request.post(f"{world.url}/api/3.0/mlflow/traces/{world.a_trace}/assessments",
                            data=orjson.dumps(body), headers=headers)
        assert r.status == 403, r.text()
        assert "CSRF" in r.json()["message"]
        r = ui.request.patch(f"{world.url}/api/2.0/mlflow/traces/{world.a_trace}/tags",
                             data=orjson.dumps({"key": "forged", "value": "x"}), headers=headers)
        assert r.status == 403, r.text()
    info = world.http.get(f"/api/3.0/mlflow/traces/{world.a_trace}", headers=admin).json()["trace"]["trace_info"]
    assert "forged" not in info["tags"]
    assert len(info["assessments"]) == 1
    # and with the page's token the session is allowed (the header, nothing else, made the difference)
    r = ui.request.patch(f"{world.url}/api/2.0/mlflow/traces/{world.a_trace}/tags",
                         data=orjson.dumps({"key": "checked", "value": "1"}), headers={**json_type, "X-CSRF-Token": token})
    assert r.status == 200, r.text()


def test_a_reader_in_the_browser_sees_only_its_experiment(browser_page: Page, world: AuthWorld) -> None:
    ui = browser_page
    _sign_in(ui, world, "reader", "/")
    expect(ui.locator(f'a[href="/experiments/{world.a}"]').first).to_be_visible()
    expect(ui.locator(f'a[href="/experiments/{world.b}"]')).to_have_count(0)
    expect(ui.locator("main")).not_to_contain_text(world.b_name)
    listed = ui.request.get(f"{world.url}/api/tracelake/experiments").json()
    assert [e["id"] for e in listed["experiments"]] == [world.a]
    r = ui.request.get(f"{world.url}/api/tracelake/experiments/{world.b}/traces")
    assert r.status == 404
    shot(ui, "auth-experiments-reader")


def test_the_user_menu_shows_the_user_and_signs_out(browser_page: Page, world: AuthWorld) -> None:
    ui = browser_page
    _sign_in(ui, world, "reader", f"/experiments/{world.a}")
    menu = ui.locator(".topbar .user-menu")
    expect(menu).to_contain_text("reader")
    expect(menu.get_by_role("link", name="Account")).to_have_attribute("href", "/account")
    expect(menu.get_by_role("link", name="Admin")).to_have_count(0)
    shot(ui, "auth-user-menu")
    menu.get_by_role("button", name="Sign out").click()
    expect(ui).to_have_url(re.compile(r"/login$"))
    ui.goto(world.url + "/")
    expect(ui).to_have_url(re.compile(r"/login\?next=%2F$"))
    assert ui.request.get(f"{world.url}/api/tracelake/experiments").status == 401


def test_the_account_link_leads_to_the_tokens_page(browser_page: Page, world: AuthWorld) -> None:
    ui = browser_page
    _sign_in(ui, world, "editor", "/")
    ui.locator(".topbar .user-menu").get_by_role("link", name="Account").click()
    expect(ui).to_have_url(world.url + "/account")
    expect(ui.locator("body")).to_contain_text("token")

