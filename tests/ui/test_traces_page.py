"""Traces of an experiment: table, filter bar, quick filters, sort, paging, live update,
selection, delete, export."""
from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.ui.conftest import Server, shot
from tests.ui.tracegen import chat_trace

ROWS = "#trace-grid .grid-row:visible"


def _open(ui: Page, server: Server, eid: str, query: str = "") -> None:
    ui.goto(f"{server.url}/experiments/{eid}{query}")
    expect(ui.locator("#trace-grid")).to_have_attribute("data-ready", "true")


def test_table_shows_time_name_previews_state_latency_tokens_cost_tags_and_feedback(ui: Page, server: Server) -> None:
    eid = server.create_experiment("table")
    server.send(eid, chat_trace("How tall is the Eiffel tower?", tags={"env": "prod"}, session="s-1", duration_ms=1234))
    tid = server.traces(eid)[0]["id"]
    server.http.post(f"/api/3.0/mlflow/traces/{tid}/assessments", json={"assessment": {
        "assessment_name": "correct", "trace_id": tid, "source": {"source_type": "HUMAN", "source_id": "t"},
        "feedback": {"value": True}}}).raise_for_status()
    for i in range(4):
        server.send(eid, chat_trace(f"question {i}", error=(i == 1), tags={"env": "dev"}))
    _open(ui, server, eid)
    expect(ui.locator(ROWS)).to_have_count(5)
    row = ui.locator(f'{ROWS}[data-id="{tid}"]')
    expect(row.locator(".c-name")).to_have_text("weather-agent")
    expect(row.locator(".c-req")).to_contain_text("How tall is the Eiffel tower?")
    expect(row.locator(".c-resp")).to_contain_text("18 °C")
    expect(row.locator(".state")).to_have_text("OK")
    expect(row.locator(".c-lat")).to_have_text("1.23 s")
    expect(row.locator(".c-tok")).to_have_text("322")
    expect(row.locator(".c-cost")).to_have_text("$0.0032")
    expect(row.locator(".chip.tag")).to_have_text("env=prod")
    expect(row.locator(".chip.assess.good")).to_contain_text("correct")
    expect(ui.locator(f"{ROWS}.is-error")).to_have_count(1)
    shot(ui, "traces")


def test_filter_bar_narrows_the_table_and_keeps_the_filter_in_the_url(ui: Page, server: Server) -> None:
    eid = server.create_experiment("filter")
    for i in range(3):
        server.send(eid, chat_trace(f"q{i}", tags={"env": "prod" if i == 0 else "dev"}))
    _open(ui, server, eid)
    ui.fill("#filter", "tags.env = 'prod'")
    ui.press("#filter", "Enter")
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator(ROWS).locator(".c-req")).to_contain_text("q0")
    assert "filter=tags.env" in ui.url
    ui.reload()
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator("#filter")).to_have_value("tags.env = 'prod'")


def test_bad_filter_is_shown_inline_pointing_at_the_bad_token(ui: Page, server: Server, problems) -> None:
    problems.allow("Failed to load resource")
    eid = server.create_experiment("badfilter")
    server.send(eid, chat_trace())
    _open(ui, server, eid)
    ui.fill("#filter", "trace.status = 'ERROR' AND tags.env === 'x'")
    ui.press("#filter", "Enter")
    error = ui.locator("#filter-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("at position 37")
    lines = error.inner_text().splitlines()
    caret_line = next(line for line in lines if line.strip() == "^")
    filter_line = lines[lines.index(caret_line) - 1]
    assert filter_line[caret_line.index("^")] == "="
    expect(ui.locator("#filter")).to_have_class("input mono invalid")
    assert ui.evaluate("document.activeElement.selectionStart") == 37  # the bad token is selected
    shot(ui, "traces-filter-error")
    ui.fill("#filter", "trace.status = 'OK'")
    ui.press("#filter", "Enter")
    expect(error).to_be_hidden()
    expect(ui.locator(ROWS)).to_have_count(1)


def test_quick_filters_errors_slow_tag_session_and_user(ui: Page, server: Server) -> None:
    eid = server.create_experiment("quick")
    server.send(eid, chat_trace("ok fast", session="sess-a", user="ann", tags={"team": "search"}))
    server.send(eid, chat_trace("failed", error=True, session="sess-b", user="bob"))
    server.send(eid, chat_trace("slow one", duration_ms=6000, user="bob"))
    _open(ui, server, eid)
    expect(ui.locator(ROWS)).to_have_count(3)
    ui.click('[data-quick="errors"]')
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator("#filter")).to_have_value("trace.status = 'ERROR'")
    expect(ui.locator('[data-quick="errors"]')).to_have_attribute("aria-pressed", "true")
    ui.click('[data-quick="errors"]')
    expect(ui.locator(ROWS)).to_have_count(3)
    ui.click('[data-quick="slow"]')
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator(ROWS).locator(".c-req")).to_contain_text("slow one")
    ui.click('[data-quick="slow"]')
    ui.select_option("#quick-kind", "user")
    ui.fill("#quick-value", "bob")
    ui.click("#quick-apply")
    expect(ui.locator(ROWS)).to_have_count(2)
    ui.click("#clear-filter")
    expect(ui.locator(ROWS)).to_have_count(3)
    ui.locator(ROWS).locator(".chip.tag", has_text="team=search").click()
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator("#filter")).to_have_value("tags.team = 'search'")
    ui.click("#clear-filter")
    ui.locator(ROWS).locator(".chip.session", has_text="sess-b").click()
    expect(ui.locator(ROWS)).to_have_count(1)
    expect(ui.locator(ROWS).locator(".c-req")).to_contain_text("failed")


def test_sort_by_latency(ui: Page, server: Server) -> None:
    eid = server.create_experiment("sort")
    for ms in (300, 900, 100):
        server.send(eid, chat_trace(f"took {ms}", duration_ms=ms))
    _open(ui, server, eid)
    ui.select_option("#order", "execution_time_ms DESC")
    expect(ui.locator(ROWS).locator(".c-lat")).to_have_text(["900 ms", "300 ms", "100 ms"])
    ui.select_option("#order", "execution_time_ms ASC")
    expect(ui.locator(ROWS).locator(".c-lat")).to_have_text(["100 ms", "300 ms", "900 ms"])
    assert "order=execution_time_ms" in ui.url


def test_keyset_paging_loads_the_next_page_on_scroll_and_rows_stay_virtual(ui: Page, server: Server) -> None:
    eid = server.create_experiment("paging")
    for i in range(130):
        server.send(eid, chat_trace(f"question number {i:03d}"))
    _open(ui, server, eid)
    expect(ui.locator("#grid-status")).to_have_text("50 traces loaded · scroll for more")
    for loaded in ("100 traces loaded · scroll for more", "130 traces loaded"):
        ui.locator("#trace-grid").evaluate("el => el.scrollTop = el.scrollHeight")
        expect(ui.locator("#grid-status")).to_have_text(loaded)
    ui.locator("#trace-grid").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(ui.locator(ROWS).filter(has_text="question number 000")).to_be_in_viewport()
    assert ui.locator("#trace-grid .grid-row").count() < 80  # only the visible window is in the DOM


def test_new_traces_appear_without_reloading(ui: Page, server: Server) -> None:
    eid = server.create_experiment("live")
    server.send(eid, chat_trace("first"))
    _open(ui, server, eid)
    expect(ui.locator(ROWS)).to_have_count(1)
    ui.evaluate("window.__marker = 'same page'")
    server.send(eid, chat_trace("arrived later"))
    expect(ui.locator(ROWS)).to_have_count(2, timeout=10_000)
    expect(ui.locator(ROWS).first.locator(".c-req")).to_contain_text("arrived later")
    assert ui.evaluate("window.__marker") == "same page"
    tid = server.traces(eid)[0]["id"]
    server.http.patch(f"/api/2.0/mlflow/traces/{tid}/tags", json={"key": "reviewed", "value": "yes"})
    expect(ui.locator(f'{ROWS}[data-id="{tid}"] .chip.tag')).to_have_text("reviewed=yes", timeout=10_000)


def test_live_update_respects_the_filter(ui: Page, server: Server) -> None:
    eid = server.create_experiment("livefilter")
    server.send(eid, chat_trace("boom", error=True))
    _open(ui, server, eid, "?filter=trace.status%20%3D%20'ERROR'")
    expect(ui.locator(ROWS)).to_have_count(1)
    server.send(eid, chat_trace("fine"))
    server.send(eid, chat_trace("boom again", error=True))
    expect(ui.locator(ROWS)).to_have_count(2, timeout=10_000)
    expect(ui.locator(ROWS).first.locator(".c-req")).to_contain_text("boom again")


def test_select_export_and_delete(ui: Page, server: Server) -> None:
    eid = server.create_experiment("select")
    for i in range(3):
        server.send(eid, chat_trace(f"item {i}"))
    _open(ui, server, eid)
    rows = ui.locator(ROWS)
    expect(rows).to_have_count(3)
    rows.nth(0).locator(".c-check input").check()
    rows.nth(1).locator(".c-check input").check()
    expect(ui.locator("#selection-count")).to_have_text("2 selected")
    chosen = {rows.nth(0).get_attribute("data-id"), rows.nth(1).get_attribute("data-id")}
    with ui.expect_download() as download:
        ui.click("#export-btn")
    with open(download.value.path()) as fh:
        exported = json.load(fh)
    assert {t["trace_info"]["trace_id"] for t in exported["traces"]} == chosen
    assert all(len(t["spans"]) == 5 for t in exported["traces"])
    ui.click("#delete-btn")
    expect(ui.locator("#delete-btn")).to_have_text("Confirm: delete 2")
    ui.click("#delete-btn")
    expect(rows).to_have_count(1)
    expect(ui.locator("#selection-bar")).to_be_hidden()
    assert {t["id"] for t in server.traces(eid)}.isdisjoint(chosen)


def test_click_a_row_opens_the_trace(ui: Page, server: Server) -> None:
    eid = server.create_experiment("open")
    server.send(eid, chat_trace("open me"))
    _open(ui, server, eid)
    ui.locator(ROWS).first.locator(".c-req").click()
    expect(ui).to_have_url(f"{server.url}/experiments/{eid}/traces/{server.traces(eid)[0]['id']}")
    expect(ui.locator("#span-tree")).to_have_attribute("data-ready", "true")
