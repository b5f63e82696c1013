"""No read of one trace's spans scans the whole ``spans`` table.

Spans are keyed by ``(trace_key, span_id)`` and ``spans.trace_id`` is not indexed, so a query
that filters or joins spans by ``trace_id`` still returns the right rows on a small database
and only shows up as a full scan at a million spans. Every statement the store (and the lake
sync) sends while serving one trace is captured and explained here.

SQLite only: its planner picks an index from the schema alone, so the plan is the same on a
tiny test database as on a big one. PostgreSQL's planner rightly prefers a sequential scan
of a table this small, so its plans say nothing about scale.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tracelake.entities import Span
from tracelake.lake.source import ChangeReader
from tracelake.store.base import SpanBatch, TraceUpdate
from tracelake.store.sql import overview
from tracelake.store.sql.store import SqlStore

TRACE = "ab" * 16


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path}/plans.db", artifact_root=str(tmp_path / "artifacts"))
    try:
        yield s
    finally:
        s.close()


def _spans(trace_hex: str, n: int) -> list[Span]:
    root = Span(trace_id=trace_hex, span_id=f"{1:016x}", parent_span_id=None, name="root", start_time_ns=1,
                end_time_ns=100, inputs='{"q": 1}', outputs='{"a": 2}')
    return [root] + [Span(trace_id=trace_hex, span_id=f"{i:016x}", parent_span_id=root.span_id, name=f"s{i}",
                          start_time_ns=i, end_time_ns=i + 1, span_type="LLM") for i in range(2, n + 1)]


def _statements(store: SqlStore, action: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not executemany and re.search(r"\bspans\b", statement) and statement.lstrip().upper().startswith(
                ("SELECT", "DELETE", "WITH")):
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    return seen


def _full_scans_of_spans(store: SqlStore, statements: list[tuple[str, Any]]) -> list[str]:
    """Plan lines that scan ``spans`` (or an alias of it) without an index."""
    bad = []
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, parameters in statements:
            aliases = {"spans"} | set(re.findall(r"\bspans AS (\w+)", statement))
            for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters or ()):
                detail = row[-1]
                match = re.match(r"SCAN (\w+)", detail)
                if match and match.group(1) in aliases and "USING" not in detail:
                    bad.append(f"{detail}  <-  {statement[:200]}")
    return bad


def test_reading_one_trace_never_scans_every_span(sqlite_store: SqlStore) -> None:
    store = sqlite_store
    exp = store.create_experiment("plans")
    store.write_spans([SpanBatch(exp, _spans(TRACE, 30), [TraceUpdate("tr-" + TRACE, exp, {"t": "1"}, {}, None)])])
    store.write_spans([SpanBatch(exp, _spans("cd" * 16, 5), [])])

    def reads() -> None:
        store.get_trace(TRACE)
        page = store.read_trace(TRACE, max_spans=10)
        store.read_trace(TRACE, max_spans=10, span_page_token=page.next_span_page_token)
        index = overview.span_index(store, TRACE, limit=10)
        overview.span_index(store, TRACE, limit=10, page_token=index.next_page_token)
        overview.span_detail(store, TRACE, f"{2:016x}")
        store.search_traces([exp], "span.name = 's3' AND span.type = 'LLM'")
        store.search_traces([exp], "trace.text ILIKE '%q%'")
        ChangeReader(store).read(0, 10**9)
        store.delete_traces(exp, trace_ids=["tr-" + "cd" * 16])

    statements = _statements(store, reads)
    assert len(statements) >= 8, statements  # the capture saw the span reads
    assert _full_scans_of_spans(store, statements) == []
