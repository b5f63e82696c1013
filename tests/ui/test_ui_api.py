"""The JSON under /api/tracelake/ that the pages read (no browser)."""
from __future__ import annotations

import pytest

from tests.ui.conftest import Server
from tests.ui.tracegen import big_trace, chat_trace
from tracelake.store.sql import overview


def test_sessions_pages_list_every_session_once_newest_first(server: Server, monkeypatch) -> None:
    monkeypatch.setattr(overview, "_SESSION_SCAN_CHUNK", 3)  # make pages cross many walk chunks
    eid = server.create_experiment("api-sessions")
    order = ["a", "b", "a", "c", "a", "d", "b", "e", "f", "a"]  # sent in this order
    for i, s in enumerate(order):
        server.send(eid, chat_trace(f"t{i}", session=s))
    server.send(eid, chat_trace("no session"))
    seen, token = [], None
    while True:
        r = server.http.get(f"/api/tracelake/experiments/{eid}/sessions",
                            params={"max_results": 2, "page_token": token or ""})
        r.raise_for_status()
        seen += [(s["id"], s["turns"]) for s in r.json()["sessions"]]
        token = r.json().get("next_page_token")
        if not token:
            break
    assert seen == [("a", 4), ("f", 1), ("e", 1), ("b", 2), ("d", 1), ("c", 1)]


def test_changes_report_new_and_updated_traces_after_a_sequence(server: Server) -> None:
    eid = server.create_experiment("api-changes")
    server.send(eid, chat_trace("before"))
    page = server.http.get(f"/api/tracelake/experiments/{eid}/traces").json()
    assert [t["request"] for t in page["traces"]] == ["before"]
    quiet = server.http.get(f"/api/tracelake/experiments/{eid}/changes", params={"since_seq": page["seq"]}).json()
    assert quiet["traces"] == [] and quiet["seq"] >= page["seq"]
    server.send(eid, chat_trace("after", error=True))
    server.http.patch(f"/api/2.0/mlflow/traces/{page['traces'][0]['id']}/tags", json={"key": "k", "value": "v"})
    changed = server.http.get(f"/api/tracelake/experiments/{eid}/changes", params={"since_seq": quiet["seq"]}).json()
    assert [t["request"] for t in changed["traces"]] == ["after", "before"]
    assert changed["traces"][1]["tags"] == {"k": "v"}
    only_errors = server.http.get(f"/api/tracelake/experiments/{eid}/changes", params={
        "since_seq": quiet["seq"], "filter": "trace.status = 'ERROR'"}).json()
    assert [t["request"] for t in only_errors["traces"]] == ["after"]


def test_bad_filter_answers_400_with_position(server: Server) -> None:
    eid = server.create_experiment("api-bad")
    r = server.http.get(f"/api/tracelake/experiments/{eid}/traces", params={"filter": "tags.x = "})
    assert r.status_code == 400
    assert r.json()["position"] == 9 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_span_index_pages_cover_every_span_once(server: Server) -> None:
    eid = server.create_experiment("api-spans")
    server.send(eid, big_trace(1234, fan_out=10))
    tid = server.traces(eid)[0]["id"]
    ids, token = [], None
    while True:
        page = server.http.get(f"/api/tracelake/traces/{tid}/spans", params={"limit": 500, "page_token": token or ""})
        page.raise_for_status()
        body = page.json()
        assert len(body["id"]) == len(body["parent"]) == len(body["start"]) == len(body["dur"])
        ids += body["id"]
        token = body.get("next_page_token")
        if not token:
            break
    assert len(ids) == len(set(ids)) == 1234


def test_metrics_merge_minutes_into_round_buckets(server: Server) -> None:
    eid = server.create_experiment("api-metrics")
    for ms in (10, 20, 4000):
        server.send(eid, chat_trace("m", duration_ms=ms))
    body = server.http.get(f"/api/tracelake/experiments/{eid}/metrics", params={"minutes": 1440}).json()
    assert body["step_minutes"] == 15 and len(body["points"]) == 96
    assert sum(p["requests"] for p in body["points"]) == 3
    busy = [p for p in body["points"] if p["requests"]]
    assert busy[-1]["p99"] > busy[-1]["p50"]


@pytest.mark.parametrize("minutes,step", [(60, 1), (360, 5), (10080, 120), (43200, 360)])
def test_metric_step_keeps_charts_under_121_points(minutes: int, step: int) -> None:
    assert overview.step_for(minutes) == step


def test_experiment_overview_counts(server: Server) -> None:
    eid = server.create_experiment("api-overview")
    server.send(eid, chat_trace("x", error=True))
    server.send(eid, chat_trace("y"))
    found = {e["id"]: e for e in server.http.get("/api/tracelake/experiments").json()["experiments"]}
    assert found[eid]["traces"] == 2 and found[eid]["error_rate"] == 0.5
