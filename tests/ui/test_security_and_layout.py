"""User-supplied text is shown, never run; pages work without the internet; static files are
cached; narrow screens; missing things get an HTML 404."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.conftest import Server, shot
from tests.ui.tracegen import XSS_NAME, XSS_TEXT, chat_trace, xss_trace

INJECTED = "document.querySelectorAll('img[src=x], [onerror], b, script:not([src]):not([type])').length"


def test_markup_in_trace_names_inputs_tags_and_sessions_is_never_executed(ui: Page, server: Server) -> None:
    eid = server.create_experiment("xss")
    server.send(eid, xss_trace())
    tid = server.traces(eid)[0]["id"]
    pages = [f"/experiments/{eid}", f"/experiments/{eid}/traces/{tid}", f"/experiments/{eid}/sessions", "/"]
    for path in pages:
        ui.goto(server.url + path)
        ui.wait_for_load_state("networkidle")
        assert ui.evaluate("window.__xss") is None, path
        assert ui.evaluate(INJECTED) == 0, path
    ui.goto(f"{server.url}/experiments/{eid}")
    expect(ui.locator("#trace-grid .grid-row .c-name").first).to_have_text(XSS_NAME)
    expect(ui.locator("#trace-grid .grid-row .chip.tag").first).to_contain_text("note=<script>")
    ui.goto(f"{server.url}/experiments/{eid}/traces/{tid}")
    expect(ui.locator("#trace-name")).to_have_text(XSS_NAME)
    ui.locator("#span-tree .span-row .span-name", has_text="bold?").click()
    expect(ui.locator("#detail h2")).to_have_text(XSS_TEXT)
    ui.locator("#detail details.section", has_text="Events").locator("summary").first.wait_for()
    expect(ui.locator("#detail .j-str").first).to_have_text(XSS_TEXT)
    ui.locator("#span-tree .span-row .span-name", has_text="agent").click()
    expect(ui.locator("#detail .chat .role-user .chat-text")).to_have_text(XSS_TEXT)
    session_link = ui.locator(".facts a", has_text="<img")
    session_link.click()
    expect(ui.locator(".conversation .msg-user .bubble")).to_have_text(XSS_TEXT)
    assert ui.evaluate("window.__xss") is None
    assert ui.evaluate(INJECTED) == 0


def test_pages_load_nothing_from_other_origins(ui: Page, server: Server) -> None:
    eid = server.create_experiment("offline")
    server.send(eid, chat_trace())
    tid = server.traces(eid)[0]["id"]
    seen: list[str] = []
    ui.on("request", lambda r: seen.append(r.url))
    for path in ["/", f"/experiments/{eid}", f"/experiments/{eid}/traces/{tid}", f"/experiments/{eid}/sessions",
                 f"/experiments/{eid}/monitoring"]:
        ui.goto(server.url + path)
        ui.wait_for_load_state("networkidle")
    assert seen and all(u.startswith((server.url, "blob:", "data:")) for u in seen)


def test_static_files_have_versioned_urls_and_long_caching(server: Server) -> None:
    html = server.http.get("/").text
    start = html.index("/static/css/app.css?v=")
    url = html[start:html.index('"', start)]
    versioned = server.http.get(url, headers={"accept-encoding": "gzip"})
    assert versioned.status_code == 200
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["content-encoding"] == "gzip"
    plain = server.http.get("/static/css/app.css")
    assert plain.headers["cache-control"] == "no-cache"
    again = server.http.get("/static/css/app.css", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304
    assert server.http.get("/static/../views.py").status_code == 404
    assert "script-src 'self' 'nonce-" in server.http.get("/").headers["content-security-policy"]


def test_unknown_trace_and_experiment_get_an_html_404(ui: Page, server: Server, problems) -> None:
    problems.allow("status of 404")
    response = ui.goto(f"{server.url}/experiments/0/traces/tr-{'0' * 32}")
    assert response is not None and response.status == 404
    expect(ui.locator("h1")).to_contain_text("404")
    response = ui.goto(f"{server.url}/experiments/987654")
    assert response is not None and response.status == 404


def test_narrow_screen_shows_the_essential_columns_and_stacks_the_trace_page(ui: Page, server: Server) -> None:
    eid = server.create_experiment("narrow")
    for i in range(3):
        server.send(eid, chat_trace(f"narrow {i}", error=(i == 0)))
    tid = server.traces(eid)[0]["id"]
    ui.set_viewport_size({"width": 390, "height": 844})
    ui.goto(f"{server.url}/experiments/{eid}")
    expect(ui.locator("#trace-grid .grid-row .c-name").first).to_be_visible()
    expect(ui.locator("#trace-grid .grid-row .c-req").first).to_be_hidden()
    assert ui.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(ui, "traces-narrow")
    ui.goto(f"{server.url}/experiments/{eid}/traces/{tid}")
    expect(ui.locator("#span-tree")).to_have_attribute("data-loaded", "true")
    ui.locator("#span-tree .span-row .span-name", has_text="search_docs").click()
    expect(ui.locator("#detail h2")).to_have_text("search_docs")
    assert ui.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(ui, "trace-narrow")
