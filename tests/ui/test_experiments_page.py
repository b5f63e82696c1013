"""Experiments page: counts, last activity, error rate; create; rename."""
from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.ui.conftest import Server, shot
from tests.ui.tracegen import chat_trace


def test_experiments_list_shows_counts_activity_and_error_rate(ui: Page, server: Server) -> None:
    eid = server.create_experiment("shop-assistant")
    for i in range(3):
        server.send(eid, chat_trace(f"question {i}", error=(i == 0)))
    ui.goto(server.url + "/")
    row = ui.locator(f'#experiments tr[data-id="{eid}"]')
    expect(row.locator("td").nth(1)).to_have_text("3")
    expect(row.locator(".rate")).to_have_text("33.3%")
    expect(row.locator("time[data-relative]")).to_have_text("just now")
    shot(ui, "experiments")


def test_create_experiment_then_rename_it(ui: Page, server: Server) -> None:
    name = f"new-{uuid.uuid4().hex[:6]}"
    ui.goto(server.url + "/")
    ui.fill("#new-name", name)
    ui.click("#create-form button[type=submit]")
    link = ui.locator("a.exp-link", has_text=name)
    expect(link).to_be_visible()
    row = ui.locator("#experiments tr", has=link)
    row.locator("button.rename").click()
    ui.locator(".rename-form input").fill(name + "-renamed")
    ui.locator(".rename-form button[type=submit]").click()
    expect(row.locator("a.exp-link")).to_have_text(name + "-renamed")
    ui.reload()
    expect(ui.locator("a.exp-link", has_text=name + "-renamed")).to_be_visible()


def test_rename_to_a_taken_name_shows_the_error(ui: Page, server: Server, problems) -> None:
    problems.allow("Failed to load resource")
    taken = server.create_experiment("taken")
    other = server.create_experiment("other")
    taken_name = server.http.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": taken}).json()
    ui.goto(server.url + "/")
    row = ui.locator(f'#experiments tr[data-id="{other}"]')
    row.locator("button.rename").click()
    ui.locator(".rename-form input").fill(taken_name["experiment"]["name"])
    ui.locator(".rename-form button[type=submit]").click()
    expect(row.locator(".form-error")).not_to_be_empty()


def test_filter_experiments_by_name(ui: Page, server: Server) -> None:
    eid = server.create_experiment("needle")
    ui.goto(server.url + "/")
    ui.fill("#exp-filter", "needle-")
    expect(ui.locator(f'#experiments tr[data-id="{eid}"]')).to_be_visible()
    expect(ui.locator('#experiments tbody tr[data-id="0"]')).to_be_hidden()
