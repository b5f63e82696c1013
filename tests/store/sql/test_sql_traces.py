"""Reading traces: ids, span paging, search pages with tags/metadata/assessments, count, tags, delete."""
from __future__ import annotations

import pytest
from store_factories import T0_NS, batch, make_span, make_trace, new_trace_hex

from tracelake.entities import Assessment
from tracelake.errors import InvalidRequest, NotFound
from tracelake.store.sql.store import SqlStore


def test_trace_id_accepts_prefixed_bare_and_uppercase_hex(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans)])
    hex_id = spans[0].trace_id
    for tid in (hex_id, "tr-" + hex_id, hex_id.upper()):
        assert store.get_trace_info(tid).trace_id == "tr-" + hex_id
    assert store.get_trace(hex_id).spans[0].trace_id == hex_id


@pytest.mark.parametrize("bad", ["tr-xyz", "1234", "tr-" + "g" * 32])
def test_malformed_trace_ids_are_invalid(store: SqlStore, bad: str) -> None:
    with pytest.raises(InvalidRequest, match="trace id"):
        store.get_trace_info(bad)


def test_missing_trace_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="not found"):
        store.get_trace(new_trace_hex())


def test_spans_are_paged_in_start_order(store: SqlStore, exp: str) -> None:
    tid = new_trace_hex()
    root = make_span(tid, name="root", duration_ms=100)
    # Several spans share a start time: paging must neither repeat nor skip them.
    kids = [make_span(tid, parent=root.span_id, start_ms=i // 3) for i in range(23)]
    store.write_spans([batch(exp, kids[::-1] + [root])])
    expected = [s.span_id for s in sorted([root, *kids], key=lambda s: (s.start_time_ns, s.span_id))]
    got: list[str] = []
    token = None
    while True:
        trace = store.get_trace(tid, max_spans=5, span_page_token=token)
        assert len(trace.spans) <= 5
        got += [s.span_id for s in trace.spans]
        token = trace.next_span_page_token
        if token is None:
            break
    assert got == expected
    assert [s.span_id for s in store.get_trace(tid).spans] == expected


def test_span_token_of_another_trace_is_invalid(store: SqlStore, exp: str) -> None:
    a, b = make_trace(), make_trace()
    store.write_spans([batch(exp, a), batch(exp, b)])
    token = store.get_trace(a[0].trace_id, max_spans=1).next_span_page_token
    with pytest.raises(InvalidRequest):
        store.get_trace(b[0].trace_id, max_spans=1, span_page_token=token)
    with pytest.raises(InvalidRequest):
        store.get_trace(b[0].trace_id, max_spans=0)


def test_search_pages_include_tags_metadata_and_assessments(store: SqlStore, exp: str) -> None:
    traces = [make_trace(start_ms=i * 1000) for i in range(7)]
    store.write_spans([batch(exp, t, tags={"i": str(n)}, metadata={"m": str(n)}) for n, t in enumerate(traces)])
    store.create_assessment(Assessment("", "tr-" + traces[6][0].trace_id, "relevance", "feedback", value=0.9))
    pages = []
    token = None
    while True:
        page = store.search_traces([exp], max_results=3, page_token=token)
        pages.append(page.items)
        token = page.next_page_token
        if token is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [info for p in pages for info in p]
    assert [info.tags["i"] for info in flat] == ["6", "5", "4", "3", "2", "1", "0"]  # newest first
    assert all(info.trace_metadata == {"m": info.tags["i"]} for info in flat)
    assert [a.name for a in flat[0].assessments] == ["relevance"] and flat[1].assessments == []
    assert flat[0].request_time == T0_NS // 1_000_000 + 6000


def test_search_and_count_span_experiments(store: SqlStore, exp: str) -> None:
    other = store.create_experiment("other")
    store.write_spans([batch(exp, make_trace()), batch(exp, make_trace()), batch(other, make_trace())])
    assert store.count_traces([exp]) == 2
    assert store.count_traces([exp, other]) == 3
    assert len(store.search_traces([exp, other]).items) == 3


def test_set_and_delete_trace_tags(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans)])
    tid = spans[0].trace_id
    store.set_trace_tag(tid, "k", "1")
    store.set_trace_tag("tr-" + tid, "k", "2")
    assert store.get_trace_info(tid).tags == {"k": "2"}
    store.delete_trace_tag(tid, "k")
    assert store.get_trace_info(tid).tags == {}
    with pytest.raises(NotFound, match="No tag 'k'"):
        store.delete_trace_tag(tid, "k")
    with pytest.raises(NotFound, match="not found"):
        store.set_trace_tag(new_trace_hex(), "k", "v")


def test_delete_traces_by_id_removes_everything(store: SqlStore, exp: str) -> None:
    keep, drop = make_trace(), make_trace()
    store.write_spans([batch(exp, keep, tags={"a": "b"}), batch(exp, drop, tags={"a": "b"}, metadata={"m": "1"})])
    store.create_assessment(Assessment("", drop[0].trace_id, "q", "feedback", value=True))
    assert store.delete_traces(exp, trace_ids=[drop[0].trace_id, new_trace_hex()]) == 1
    with pytest.raises(NotFound):
        store.get_trace(drop[0].trace_id)
    assert store.count_traces([exp]) == 1
    # Re-ingesting a deleted trace starts it afresh (no orphan rows were left behind).
    [r] = store.write_spans([batch(exp, drop)])
    assert r.spans_written == 5
    info = store.get_trace_info(drop[0].trace_id)
    assert (info.tags, info.trace_metadata, info.assessments) == ({}, {}, [])


def test_delete_traces_only_in_the_named_experiment(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans)])
    assert store.delete_traces("0", trace_ids=[spans[0].trace_id]) == 0
    assert store.count_traces([exp]) == 1


def test_delete_traces_by_timestamp_oldest_first(store: SqlStore, exp: str) -> None:
    traces = [make_trace(start_ms=i * 60_000) for i in range(5)]
    store.write_spans([batch(exp, t) for t in traces])
    t0 = T0_NS // 1_000_000
    assert store.delete_traces(exp, max_timestamp_millis=t0 + 3 * 60_000, max_traces=2) == 2
    assert store.delete_traces(exp, max_timestamp_millis=t0 + 3 * 60_000) == 2
    left = store.search_traces([exp]).items
    assert [i.trace_id for i in left] == ["tr-" + traces[4][0].trace_id]


def test_delete_traces_needs_exactly_one_selector(store: SqlStore, exp: str) -> None:
    with pytest.raises(InvalidRequest):
        store.delete_traces(exp)
    with pytest.raises(InvalidRequest):
        store.delete_traces(exp, trace_ids=[], max_timestamp_millis=1)
    with pytest.raises(NotFound):
        store.delete_traces("999", trace_ids=[])
