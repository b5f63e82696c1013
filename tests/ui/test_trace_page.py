"""Trace page: span tree + waterfall, span detail (JSON, chat, exceptions, usage), keyboard,
deep links, feedback and tags, and a 30,000-span trace."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Server, shot
from tests.ui.tracegen import big_trace, chat_trace

SPAN_ROWS = "#span-tree .span-row:visible"


def _open_trace(ui: Page, server: Server, eid: str, tid: str, fragment: str = "") -> None:
    ui.goto(f"{server.url}/experiments/{eid}/traces/{tid}{fragment}")
    expect(ui.locator("#span-tree")).to_have_attribute("data-loaded", "true")


@pytest.fixture
def chat(server: Server) -> tuple[str, str]:
    eid = server.create_experiment("trace")
    server.send(eid, chat_trace("Weather in Paris?", error=True, session="conv-1", user="ann",
                                tags={"env": "prod"}))
    return eid, server.traces(eid)[0]["id"]


def row(ui: Page, name: str, nth: int = 0):
    return ui.locator(SPAN_ROWS).filter(has=ui.locator(".span-name", has_text=name)).nth(nth)


def test_tree_shows_spans_with_types_durations_and_errors(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    expect(ui.locator(SPAN_ROWS)).to_have_count(5)
    expect(ui.locator(f"{SPAN_ROWS} .span-name")).to_have_text(
        ["weather-agent", "search_docs", "chat_completion", "get_weather", "chat_completion"])
    expect(ui.locator(SPAN_ROWS).first).to_have_attribute("aria-level", "1")
    expect(row(ui, "get_weather")).to_have_attribute("aria-level", "2")
    expect(row(ui, "get_weather")).to_have_class("span-row is-error")
    expect(row(ui, "get_weather").locator(".type-icon")).to_have_class("icon type-icon t-TOOL")
    expect(row(ui, "weather-agent").locator(".span-dur")).to_have_text("40 ms")
    expect(row(ui, "weather-agent").locator(".wf-bar")).to_be_visible()
    expect(ui.locator("#tree-status")).to_have_text("5 spans")
    expect(ui.locator(".trace-head .state")).to_have_text("ERROR")


def test_clicking_a_span_shows_inputs_and_outputs_as_json(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    row(ui, "search_docs").click()
    detail = ui.locator("#detail")
    expect(detail.locator("h2")).to_have_text("search_docs")
    inputs = detail.locator("details.section", has_text="Inputs")
    expect(inputs.locator(".j-key")).to_have_text("query: ")
    expect(inputs.locator(".j-str")).to_have_text("Weather in Paris?")
    outputs = detail.locator("details.section", has_text="Outputs")
    outputs.locator("summary").first.click()  # collapse
    expect(outputs.locator(".json")).to_be_hidden()
    assert ui.evaluate("location.hash").startswith("#span=")


def test_chat_messages_render_as_a_conversation_with_roles_and_tool_calls(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    row(ui, "chat_completion", 1).click()
    conversation = ui.locator("#detail .chat")
    expect(conversation.locator(".chat-role")).to_have_text(
        ["system", "user", "assistant", "tool · call_1", "assistant"])
    expect(conversation.locator(".role-user .chat-text")).to_have_text("Weather in Paris?")
    expect(conversation.locator(".tool-call .mono")).to_have_text("get_weather")
    expect(conversation.locator(".chat-msg").last).to_contain_text("18 °C and sunny")
    expect(ui.locator("#detail .usage")).to_contain_text("160")
    shot(ui, "trace")
    ui.locator("#detail .section summary button", has_text="JSON").click()
    expect(ui.locator("#detail .raw")).to_be_visible()


def test_exception_events_show_the_stack_trace(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    row(ui, "get_weather").click()
    box = ui.locator("#detail .error-box")
    expect(box.locator(".error-message")).to_have_text("weather service did not answer in 2 s")
    expect(box.locator(".exception-head")).to_have_text("TimeoutError: weather service did not answer in 2 s")
    expect(box.locator("pre.stack")).to_contain_text("Traceback")


def test_collapse_expand_and_keyboard_navigation(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    root = row(ui, "weather-agent")
    root.locator(".caret").click()
    expect(ui.locator(SPAN_ROWS)).to_have_count(1)
    expect(root).to_have_attribute("aria-expanded", "false")
    root.locator(".caret").click()
    expect(ui.locator(SPAN_ROWS)).to_have_count(5)
    root.click()
    tree = ui.locator("#span-tree")
    tree.press("ArrowDown")
    expect(ui.locator("#detail h2")).to_have_text("search_docs")
    tree.press("ArrowDown")
    tree.press("ArrowDown")
    expect(ui.locator("#detail h2")).to_have_text("get_weather")
    tree.press("ArrowLeft")  # a leaf: go to the parent
    expect(ui.locator("#detail h2")).to_have_text("weather-agent")
    tree.press("ArrowLeft")  # an open parent: collapse it
    expect(ui.locator(SPAN_ROWS)).to_have_count(1)
    tree.press("ArrowRight")  # expand
    expect(ui.locator(SPAN_ROWS)).to_have_count(5)
    tree.press("End")
    expect(ui.locator(f"{SPAN_ROWS}.is-selected .span-name")).to_have_text("chat_completion")
    tree.press("Home")
    expect(ui.locator(f"{SPAN_ROWS}.is-selected .span-name")).to_have_text("weather-agent")


def test_deep_link_opens_the_span(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    spans = server.http.get(f"/api/tracelake/traces/{tid}/spans").json()
    tool_id = spans["id"][[spans["names"][n] for n in spans["name"]].index("get_weather")]
    _open_trace(ui, server, eid, tid, f"#span={tool_id}")
    expect(ui.locator("#detail h2")).to_have_text("get_weather")
    expect(ui.locator(f"{SPAN_ROWS}.is-selected")).to_have_attribute("data-span-id", tool_id)


def test_add_feedback_and_edit_tags(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    expect(ui.locator("#tags .chip")).to_have_text(["env=prod"])
    form = ui.locator("#feedback-form")
    form.locator('[data-thumb="down"]').click()
    form.locator('input[name="comment"]').fill("The tool timed out; answer made up.")
    form.locator("button[type=submit]").click()
    item = ui.locator("#assessments .assessment")
    expect(item).to_have_count(1)
    expect(item.locator(".chip.assess.bad")).to_have_text("no")
    expect(item.locator(".rationale")).to_have_text("The tool timed out; answer made up.")
    row(ui, "get_weather").click()
    form.locator('input[name="name"]').fill("tool_quality")
    form.locator('input[name="value"]').fill("2")
    form.locator('input[name="on_span"]').check()
    form.locator("button[type=submit]").click()
    expect(item).to_have_count(2)
    expect(item.nth(1)).to_contain_text("tool_quality")
    expect(item.nth(1).locator(".chip.assess")).to_have_text("2")
    stored = server.http.get(f"/api/3.0/mlflow/traces/{tid}").json()["trace"]["trace_info"]["assessments"]
    assert [(a["assessment_name"], a["feedback"]["value"], a["source"]["source_type"]) for a in stored] == [
        ("user_feedback", False, "HUMAN"), ("tool_quality", 2, "HUMAN")]
    assert stored[1]["span_id"] == ui.locator(f"{SPAN_ROWS}.is-selected").get_attribute("data-span-id")

    tag_form = ui.locator("#tag-form")
    tag_form.locator('input[name="key"]').fill("reviewed")
    tag_form.locator('input[name="value"]').fill("yes")
    tag_form.locator("button[type=submit]").click()
    expect(ui.locator("#tags .chip")).to_have_text(["env=prod", "reviewed=yes"])
    ui.locator('#tags .chip[data-key="env"] .chip-x').click()
    expect(ui.locator("#tags .chip")).to_have_text(["reviewed=yes"])
    tags = server.http.get(f"/api/tracelake/traces/{tid}").json()["trace"]["tags"]
    assert tags == {"reviewed": "yes"}
    shot(ui, "trace-feedback", full_page=True)


def test_feedback_needs_a_value(ui: Page, server: Server, chat) -> None:
    eid, tid = chat
    _open_trace(ui, server, eid, tid)
    ui.locator("#feedback-form button[type=submit]").click()
    expect(ui.locator("#feedback-error")).to_have_text("Choose thumbs up or down, or enter a value.")


@pytest.fixture(scope="module")
def huge(server: Server) -> tuple[str, str]:
    eid = server.create_experiment("huge")
    server.send(eid, big_trace(30_000))
    return eid, server.traces(eid)[0]["id"]


def test_a_30000_span_trace_renders_only_the_visible_rows(ui: Page, server: Server, huge) -> None:
    eid, tid = huge
    _open_trace(ui, server, eid, tid)
    expect(ui.locator("#tree-status")).to_have_text("30,000 spans")
    assert ui.locator("#span-tree .span-row").count() < 120
    tree = ui.locator("#span-tree")
    tree.focus()
    tree.press("End")
    expect(ui.locator(f"{SPAN_ROWS}.is-selected .span-name")).to_have_text("step-29999")
    expect(ui.locator("#detail h2")).to_have_text("step-29999")
    assert ui.locator("#span-tree .span-row").count() < 120
    expect(ui.locator(f"{SPAN_ROWS}.is-error").first).to_be_visible()
    shot(ui, "trace-30000-spans")
    first_group = row(ui, "group-0")
    tree.press("Home")
    first_group = row(ui, "group-0")
    first_group.locator(".caret").click()
    expect(first_group).to_have_attribute("aria-expanded", "false")
    expect(row(ui, "group-1")).to_be_visible()


def test_a_deep_link_into_a_huge_trace_scrolls_to_the_span(ui: Page, server: Server, huge) -> None:
    eid, tid = huge
    page = server.http.get(f"/api/tracelake/traces/{tid}/spans", params={"limit": 20000}).json()
    names = [page["names"][n] for n in page["name"]]
    target = page["id"][names.index("step-15002")]
    _open_trace(ui, server, eid, tid, f"#span={target}")
    expect(ui.locator("#detail h2")).to_have_text("step-15002")
    expect(ui.locator(f"{SPAN_ROWS}.is-selected")).to_be_in_viewport()
