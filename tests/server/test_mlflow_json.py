"""``trace_json`` builds GetTrace's span JSON straight from rows: it must say exactly what the
straightforward reading of the ``Span`` entities says (the shape the mlflow client parses)."""
from __future__ import annotations

import base64
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracelake.entities import Span, SpanEvent
from tracelake.server.mlflow_json import any_value, json_value, trace_json, without_gc
from tracelake.store.base import SpanBatch
from tracelake.store.sql.store import SqlStore

T0 = 1_700_000_000_000_000_000
TRACE_HEX = "0af7651916cd43dd8448eb211c80319c"


def reference_span_json(span: Span) -> dict[str, Any]:
    """GetTrace's span, written the obvious way from the entity (the shape before rows were used)."""
    def b64(hex_id: str | None) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode() if hex_id else ""

    attributes: dict[str, Any] = dict(span.attributes)
    attributes["mlflow.traceRequestId"] = span.request_id
    attributes["mlflow.spanType"] = span.span_type
    if span.inputs is not None:
        attributes["mlflow.spanInputs"] = json_value(span.inputs)
    if span.outputs is not None:
        attributes["mlflow.spanOutputs"] = json_value(span.outputs)
    if span.input_tokens is not None or span.output_tokens is not None:
        attributes["mlflow.chat.tokenUsage"] = {
            "input_tokens": span.input_tokens or 0, "output_tokens": span.output_tokens or 0,
            "total_tokens": span.total_tokens or (span.input_tokens or 0) + (span.output_tokens or 0)}
    codes = {"OK": "STATUS_CODE_OK", "ERROR": "STATUS_CODE_ERROR"}
    return {
        "trace_id": b64(span.trace_id), "span_id": b64(span.span_id), "parent_span_id": b64(span.parent_span_id),
        "name": span.name, "start_time_unix_nano": span.start_time_ns, "end_time_unix_nano": span.end_time_ns or 0,
        "attributes": [{"key": k, "value": any_value(v)} for k, v in attributes.items()],
        "events": [{"time_unix_nano": e.time_ns, "name": e.name,
                    "attributes": [{"key": k, "value": any_value(v)} for k, v in e.attributes.items()]}
                   for e in span.events],
        "status": {"code": codes.get(span.status_code, "STATUS_CODE_UNSET"), "message": span.status_message},
    }


def span(sid: int, parent: int | None = None, start: int = 0, **fields: Any) -> Span:
    return Span(trace_id=TRACE_HEX, span_id=f"{sid:016x}", parent_span_id=f"{parent:016x}" if parent else None,
                name=fields.pop("name", f"span-{sid}"), start_time_ns=T0 + start,
                end_time_ns=fields.pop("end_time_ns", T0 + start + 1000), **fields)


def varied_spans() -> list[Span]:
    tool = {"mlflow.spanType": '"TOOL"'}
    return [
        span(1, name="root", span_type="AGENT", inputs='{"q": "hi"}', outputs='"answer"', status_code="OK"),
        # same stored attributes and span type, different content: share a template, not values
        span(4, 1, 10, span_type="TOOL", attributes=dict(tool)),  # same start: ordered by span id
        span(3, 1, 10, span_type="TOOL", attributes=dict(tool), inputs='{"i": 2}', outputs='{"ok": true}'),
        span(2, 1, 10, span_type="TOOL", attributes=dict(tool), inputs='{"i": 1}', outputs='{"ok": true}'),
        span(5, 1, 20, span_type="LLM", input_tokens=12, output_tokens=3, model="m",
             attributes={"gen_ai.request.model": "m", "temperature": 0.5, "stream": False, "n": 2,
                         "stop": ["a", "b"], "nested": {"k": [1, {"x": None}]}, "mlflow.spanInputs": "stale"},
             inputs='[{"role": "user", "content": "héllo ✓"}]', outputs="not json {"),
        span(6, 5, 30, status_code="ERROR", status_message="boom", input_tokens=1, output_tokens=None,
             total_tokens=7, events=[SpanEvent("exception", T0 + 31, {"exception.message": "boom", "n": 1}),
                                     SpanEvent("retry", T0 + 32)]),
        span(7, 99, 40, inputs="null", outputs='""', end_time_ns=None),  # parent not in the trace
        span(8, 1, 50, name="big", inputs='{"text": "' + "z" * 5000 + '"}', outputs='"' + "w" * 300 + '"'),
    ]


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"), offload_span_bytes=4096)
    try:
        yield s
    finally:
        s.close()


def test_trace_json_says_what_the_span_entities_say(store: SqlStore) -> None:
    eid = store.create_experiment("json")
    store.write_spans([SpanBatch(eid, varied_spans())])
    found = store.read_trace(TRACE_HEX)
    assert found.content, "span 8 is offloaded to artifact storage"
    got = orjson.loads(orjson.dumps(trace_json(found)))
    expected = [reference_span_json(s) for s in store.get_trace(TRACE_HEX).spans]
    assert [s["name"] for s in got["spans"]] == [s["name"] for s in expected]
    assert [s["span_id"] for s in got["spans"][1:4]] == [base64.b64encode(bytes.fromhex(f"{i:016x}")).decode()
                                                        for i in (2, 3, 4)]
    assert got["spans"] == expected
    assert got["trace_info"]["trace_id"] == "tr-" + TRACE_HEX


def test_trace_json_of_a_span_page_matches_the_entities(store: SqlStore) -> None:
    eid = store.create_experiment("json")
    store.write_spans([SpanBatch(eid, varied_spans())])
    token = None
    seen = []
    while True:
        found = store.read_trace(TRACE_HEX, max_spans=3, span_page_token=token)
        page = store.get_trace(TRACE_HEX, max_spans=3, span_page_token=token)
        assert orjson.loads(orjson.dumps(trace_json(found)))["spans"] == [reference_span_json(s) for s in page.spans]
        seen += [s.span_id for s in page.spans]
        token = found.next_span_page_token
        assert token == page.next_span_page_token
        if not token:
            break
    assert seen == [s.span_id for s in store.get_trace(TRACE_HEX).spans]


def test_unreadable_offloaded_content_shows_the_span_without_it(store: SqlStore, tmp_path: Path) -> None:
    eid = store.create_experiment("json")
    store.write_spans([SpanBatch(eid, varied_spans())])
    for blob in (tmp_path / "artifacts").rglob("*.json"):
        blob.unlink()
    got = trace_json(store.read_trace(TRACE_HEX))
    big = next(s for s in got["spans"] if s["name"] == "big")
    assert [a["key"] for a in big["attributes"]] == ["mlflow.traceRequestId", "mlflow.spanType"]


def test_gc_pauses_overlap_and_restore_collection() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        inside.set()
        release.wait(5)

    thread = threading.Thread(target=without_gc, args=(other,))
    thread.start()
    assert inside.wait(5)
    assert without_gc(gc.isenabled) is False
    assert not gc.isenabled()  # the other thread's pause is still on
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_gc_pause_ends_when_the_answer_fails() -> None:
    def fail() -> None:
        raise ValueError("no such trace")

    with pytest.raises(ValueError):
        without_gc(fail)
    assert gc.isenabled()
