"""The UI's store queries (``tracelake.store.sql.overview``) on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import time

import pytest

from tracelake.entities import Span
from tracelake.store.base import SpanBatch, TraceUpdate
from tracelake.store.sql import overview
from tracelake.store.sql.store import SqlStore


@pytest.fixture
def store(store_uri: str, tmp_path) -> SqlStore:
    s = SqlStore(store_uri, str(tmp_path / "artifacts"), offload_span_bytes=200)
    yield s
    s.close()


def _trace(store: SqlStore, eid: str, i: int, session: str | None, error: bool = False, children: int = 0,
           big_input: bool = False) -> str:
    hex_id = f"{i:032x}"
    start = (int(time.time() * 1000) - 60_000 + i) * 1_000_000
    inputs = {"messages": [{"role": "user", "content": f"question {i}" + (" x" * 200 if big_input else "")}]}
    spans = [Span(hex_id, f"{i:08x}00000000", None, f"root-{i}", start, start + 5_000_000,
                  status_code="ERROR" if error else "OK", span_type="AGENT", inputs=json.dumps(inputs),
                  outputs=json.dumps(f"answer {i}"), input_tokens=10, output_tokens=2)]
    for c in range(children):
        spans.append(Span(hex_id, f"{i:08x}{c + 1:08x}", spans[0].span_id, f"child-{c}", start + c, start + c + 10,
                          span_type="TOOL"))
    meta = {"mlflow.trace.session": session} if session else {}
    store.write_spans([SpanBatch(eid, spans, [TraceUpdate("tr-" + hex_id, eid, metadata=meta)])])
    return "tr-" + hex_id


def test_overview_counts_last_activity_and_error_rate(store: SqlStore) -> None:
    eid = store.create_experiment("a")
    store.create_experiment("empty")
    for i in range(4):
        _trace(store, eid, i, None, error=(i == 0))
    found = {o.name: o for o in overview.experiment_overviews(store, int(time.time() * 1000))}
    assert found["a"].trace_count == 4 and found["a"].error_rate == 0.25
    assert found["a"].last_trace_time is not None
    assert found["empty"].trace_count == 0 and found["empty"].error_rate is None


def test_changed_traces_since_a_sequence(store: SqlStore) -> None:
    eid = store.create_experiment("c")
    first = _trace(store, eid, 1, None)
    seq = overview.current_seq(store)
    assert overview.changed_traces(store, eid, seq, None).traces == []
    second = _trace(store, eid, 2, None, error=True)
    store.set_trace_tag(first, "k", "v")
    changes = overview.changed_traces(store, eid, seq, None)
    assert [t.trace_id for t in changes.traces] == [second, first]
    assert [t.trace_id for t in overview.changed_traces(store, eid, seq, "trace.status = 'ERROR'").traces] == [second]


def test_sessions_pages_and_turns(store: SqlStore, monkeypatch) -> None:
    monkeypatch.setattr(overview, "_SESSION_SCAN_CHUNK", 2)
    eid = store.create_experiment("s")
    for i, s in enumerate(["x", "y", "x", None, "z", "x"]):
        _trace(store, eid, i, s, error=(i == 2), big_input=(i == 5))
    seen, token = [], None
    while True:
        page = overview.sessions_page(store, eid, max_results=1, page_token=token)
        seen += [(s.session_id, s.turns, s.errors) for s in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == [("x", 3, 1), ("z", 1, 0), ("y", 1, 0)]
    turns = overview.session_turns(store, eid, "x")
    assert [json.loads(t.outputs) for t in turns] == ["answer 0", "answer 2", "answer 5"]
    assert "question 5 x x" in turns[2].inputs  # offloaded to artifact storage and read back


def test_span_index_and_detail(store: SqlStore) -> None:
    eid = store.create_experiment("spans")
    tid = _trace(store, eid, 7, None, children=5, big_input=True)
    first = overview.span_index(store, tid, limit=4)
    rest = overview.span_index(store, tid, limit=4, page_token=first.next_page_token)
    assert len(first.rows) == 4 and len(rest.rows) == 2 and rest.next_page_token is None
    assert {r.span_id for r in first.rows}.isdisjoint(r.span_id for r in rest.rows)
    root = overview.span_detail(store, tid, first.rows[0].span_id)
    assert root.name == "root-7" and "question 7" in root.inputs


def test_metric_series_merges_histograms(store: SqlStore) -> None:
    eid = store.create_experiment("m")
    for i in range(3):
        _trace(store, eid, i, None, error=(i == 1))
    step, points = overview.metric_series(store, eid, int(time.time() // 60), 60)
    assert step == 1 and len(points) == 60
    assert sum(p.requests for p in points) == 3 and sum(p.errors for p in points) == 1
    assert sum(p.input_tokens for p in points) == 30
