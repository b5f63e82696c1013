"""Sessions (traces grouped by session id, shown as a conversation) and Monitoring (charts
from the rollups)."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.conftest import Server, shot
from tests.ui.tracegen import chat_trace


def test_sessions_list_groups_traces_by_session(ui: Page, server: Server) -> None:
    eid = server.create_experiment("sessions")
    for i in range(3):
        server.send(eid, chat_trace(f"turn {i} of alpha", session="alpha", user="ann", error=(i == 2)))
    server.send(eid, chat_trace("only turn of beta", session="beta", user="bob"))
    server.send(eid, chat_trace("no session at all"))
    ui.goto(f"{server.url}/experiments/{eid}/sessions")
    rows = ui.locator("#sessions-body tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("beta")
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("alpha")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("3")
    expect(rows.nth(1).locator(".rate.bad")).to_have_text("1")
    expect(rows.nth(1).locator("td").nth(7)).to_have_text("ann")
    shot(ui, "sessions")


def test_session_page_shows_the_conversation(ui: Page, server: Server) -> None:
    eid = server.create_experiment("conversation")
    for q in ("Hi, I need a weather report", "And for tomorrow?"):
        server.send(eid, chat_trace(q, session="chat/42"))
    ui.goto(f"{server.url}/experiments/{eid}/sessions")
    ui.locator("#sessions-body a", has_text="chat/42").click()
    expect(ui.locator("h1")).to_contain_text("chat/42")
    turns = ui.locator(".conversation .turn")
    expect(turns).to_have_count(2)
    expect(turns.locator(".msg-user .bubble")).to_have_text(["Hi, I need a weather report", "And for tomorrow?"])
    expect(turns.nth(0).locator(".msg-assistant .bubble")).to_have_text("It is 18 °C and sunny in Paris.")
    shot(ui, "session")
    turns.nth(1).locator("a", has_text="open trace").click()
    expect(ui.locator("#span-tree")).to_have_attribute("data-ready", "true")


def test_sessions_load_more(ui: Page, server: Server) -> None:
    eid = server.create_experiment("manysessions")
    for i in range(55):
        server.send(eid, chat_trace(f"hello {i}", session=f"s-{i:02d}"))
    ui.goto(f"{server.url}/experiments/{eid}/sessions")
    expect(ui.locator("#sessions-body tr")).to_have_count(50)
    ui.click("#more-sessions")
    expect(ui.locator("#sessions-body tr")).to_have_count(55)
    expect(ui.locator("#more-sessions")).to_be_hidden()
    expect(ui.locator("#sessions-body tr").last.locator("td").first).to_have_text("s-00")


def test_monitoring_charts_requests_errors_latency_tokens_and_cost(ui: Page, server: Server) -> None:
    eid = server.create_experiment("monitoring")
    for i in range(6):
        server.send(eid, chat_trace(f"m{i}", error=(i % 3 == 0), duration_ms=100 * (i + 1)))
    ui.goto(f"{server.url}/experiments/{eid}/monitoring")
    expect(ui.locator("#charts")).to_have_attribute("data-ready", "true")
    expect(ui.locator("#charts figcaption > span:first-child")).to_have_text(
        ["Requests", "Error rate", "Latency", "Tokens", "Cost"])
    kpis = ui.locator("#kpis .kpi")
    expect(kpis.nth(0).locator(".kpi-value")).to_have_text("6")
    expect(kpis.nth(1).locator(".kpi-value")).to_have_text("33.3%")
    expect(kpis.nth(3).locator(".kpi-value")).to_have_text("1,932")
    expect(ui.locator("#charts .chart").nth(0).locator("rect")).not_to_have_count(0)
    expect(ui.locator("#charts .chart").nth(2).locator("path")).to_have_count(3)
    shot(ui, "monitoring")
    ui.click('#range button[data-minutes="60"]')
    expect(ui.locator('#range button[data-minutes="60"]')).to_have_attribute("aria-pressed", "true")
    ui.locator("#charts .chart-svg").first.hover()
    expect(ui.locator("#charts .chart-tip").first).to_be_visible()


def test_monitoring_lists_lake_tables_with_row_counts_and_freshness(ui: Page, server: Server) -> None:
    eid = server.create_experiment("lake-view")
    for i in range(3):
        server.send(eid, chat_trace(f"lake {i}"))
    # The lake tables hold every experiment's traces (the server is shared by this module's tests).
    ids = [e["experiment_id"] for e in server.http.post("/api/2.0/mlflow/experiments/search", json={}).json()[
        "experiments"]]
    total = server.http.post("/api/3.0/mlflow/traces/count", json={"experiment_ids": ids}).json()["count"]
    assert total >= 3
    ui.goto(f"{server.url}/experiments/{eid}/monitoring")
    traces_row = ui.locator('#lake-body tr[data-table$=".traces"]')
    # the in-server sync lands the traces within seconds; the page refreshes the list every 5 s
    expect(traces_row.locator("td").nth(1)).to_have_text(f"{total:,}", timeout=60_000)
    expect(traces_row.locator("td").nth(5)).to_have_text("caught up", timeout=60_000)
    expect(ui.locator('#lake-body tr[data-table$=".spans"]')).to_have_count(1)
    shot(ui, "monitoring-lake")
