"""Ingest (write_spans): trace state from the root, order independence, idempotency, token
roll-up, trace updates, change sequence, experiments, start_trace."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from store_factories import T0_NS, batch, make_span, make_trace, new_trace_hex

from tracelake.entities import TraceInfo
from tracelake.errors import InvalidRequest, NotFound
from tracelake.store.base import IngestResult, SpanBatch, TraceUpdate
from tracelake.store.sql.schema import traces
from tracelake.store.sql.store import SqlStore


def seq_of(store: SqlStore, trace_id: str) -> int:
    with store.read() as conn:
        return conn.execute(select(traces.c.seq).where(traces.c.trace_id == trace_id)).scalar_one()


def test_complete_trace_in_one_batch(store: SqlStore, exp: str) -> None:
    spans = make_trace(root_ms=250, inputs='{"q": "hi"}', outputs='"hello"')
    [result] = store.write_spans([batch(exp, spans)])
    assert result == IngestResult(traces=1, spans_written=5, spans_duplicate=0)
    info = store.get_trace_info("tr-" + spans[0].trace_id)
    assert info.state == "OK"
    assert info.execution_duration == 250
    assert info.request_time == T0_NS // 1_000_000
    assert info.name == "root"
    assert (info.request_preview, info.response_preview) == ('{"q": "hi"}', '"hello"')
    assert info.span_count == 5 and info.experiment_id == exp


def test_error_root_makes_an_error_trace(store: SqlStore, exp: str) -> None:
    spans = make_trace(status="ERROR")
    store.write_spans([batch(exp, spans)])
    assert store.get_trace_info(spans[0].trace_id).state == "ERROR"


def test_trace_is_in_progress_until_the_root_arrives(store: SqlStore, exp: str) -> None:
    root, *children = make_trace(root_ms=80)
    late_start = make_span(root.trace_id, parent=root.span_id, start_ms=30)
    store.write_spans([batch(exp, [late_start])])
    store.write_spans([batch(exp, children)])
    info = store.get_trace_info(root.trace_id)
    assert info.state == "IN_PROGRESS" and info.execution_duration is None
    assert info.request_time == T0_NS // 1_000_000 + 1  # earliest span so far
    assert info.span_count == 5
    store.write_spans([batch(exp, [root])])
    info = store.get_trace_info(root.trace_id)
    assert (info.state, info.execution_duration, info.request_time) == ("OK", 80, T0_NS // 1_000_000)
    assert info.span_count == 6


def test_unended_root_keeps_the_trace_in_progress(store: SqlStore, exp: str) -> None:
    tid = new_trace_hex()
    store.write_spans([batch(exp, [make_span(tid, name="root", duration_ms=None)])])
    assert store.get_trace_info(tid).state == "IN_PROGRESS"


def test_spans_in_any_order_and_many_batches_give_the_same_trace(store: SqlStore, exp: str) -> None:
    spans = make_trace(children=30, root_ms=500, input_tokens=1)
    shuffled = spans[:]
    random.Random(7).shuffle(shuffled)
    results = store.write_spans([batch(exp, shuffled[i:i + 4]) for i in range(0, len(shuffled), 4)])
    assert sum(r.spans_written for r in results) == 31
    trace = store.get_trace(spans[0].trace_id)
    assert trace.info.state == "OK" and trace.info.span_count == 31
    assert [s.span_id for s in trace.spans] == [s.span_id for s in spans]  # ordered by start time


def test_resent_spans_are_idempotent(store: SqlStore, exp: str) -> None:
    spans = make_trace(input_tokens=10, output_tokens=3, cost=0.5)
    store.write_spans([batch(exp, spans)])
    again = store.write_spans([batch(exp, spans), batch(exp, spans[:2])])
    assert again == [IngestResult(1, 0, 5), IngestResult(1, 0, 2)]
    info = store.get_trace_info(spans[0].trace_id)
    assert (info.span_count, info.input_tokens, info.output_tokens, info.cost) == (5, 10, 3, 0.5)
    assert len(store.get_trace(spans[0].trace_id).spans) == 5


def test_duplicates_inside_one_batch_and_one_group(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    results = store.write_spans([batch(exp, spans + spans[:1]), batch(exp, spans[1:3])])
    assert results == [IngestResult(1, 5, 1), IngestResult(1, 0, 2)]
    assert store.get_trace_info(spans[0].trace_id).span_count == 5


def test_partially_resent_batch_counts_only_new_spans(store: SqlStore, exp: str) -> None:
    spans = make_trace(children=6)
    store.write_spans([batch(exp, spans[:4])])
    [r] = store.write_spans([batch(exp, spans[2:])])
    assert (r.spans_written, r.spans_duplicate) == (3, 2)
    assert store.get_trace_info(spans[0].trace_id).span_count == 7


def test_token_usage_rolls_up_to_the_trace(store: SqlStore, exp: str) -> None:
    tid = new_trace_hex()
    root = make_span(tid, name="root", duration_ms=100)
    llm1 = make_span(tid, parent=root.span_id, input_tokens=100, output_tokens=20, total_tokens=120, cost=0.01,
                     model="gpt-4o")
    llm2 = make_span(tid, parent=root.span_id, input_tokens=50, output_tokens=5, cost=0.002)
    tool = make_span(tid, parent=root.span_id)
    store.write_spans([batch(exp, [root, llm1]), batch(exp, [llm2, tool])])
    info = store.get_trace_info(tid)
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (150, 25, 175)
    assert info.cost == pytest.approx(0.012)
    got = {s.span_id: s for s in store.get_trace(tid).spans}
    assert (got[llm1.span_id].model, got[llm1.span_id].total_tokens) == ("gpt-4o", 120)


def test_trace_without_usage_has_no_tokens(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans)])
    info = store.get_trace_info(spans[0].trace_id)
    assert (info.input_tokens, info.output_tokens, info.total_tokens, info.cost) == (None, None, None, None)


def test_previews_are_truncated_to_1000_chars(store: SqlStore, exp: str) -> None:
    spans = make_trace(inputs='"' + "x" * 3000 + '"', outputs='"' + "é" * 1500 + '"')
    store.write_spans([batch(exp, spans)])
    info = store.get_trace_info(spans[0].trace_id)
    assert len(info.request_preview or "") == 1000 and len(info.response_preview or "") == 1000
    assert store.get_trace(spans[0].trace_id).spans[0].inputs == '"' + "x" * 3000 + '"'


def test_trace_updates_merge_tags_last_wins_and_metadata_first_wins(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans[:2], tags={"a": "1", "b": "1"}, metadata={"m": "first"},
                             client_request_id="req-1")])
    store.write_spans([batch(exp, spans[2:], tags={"b": "2"}, metadata={"m": "second", "n": "x"})])
    info = store.get_trace_info(spans[0].trace_id)
    assert info.tags == {"a": "1", "b": "2"}
    assert info.trace_metadata == {"m": "first", "n": "x"}
    assert info.client_request_id == "req-1"


def test_session_and_user_come_from_metadata(store: SqlStore, exp: str) -> None:
    spans = make_trace()
    store.write_spans([batch(exp, spans, metadata={"mlflow.trace.session": "s-9", "mlflow.trace.user": "ann"})])
    with store.read() as conn:
        row = conn.execute(select(traces.c.session_id, traces.c.user_id)
                           .where(traces.c.trace_id == "tr-" + spans[0].trace_id)).one()
    assert tuple(row) == ("s-9", "ann")


def test_trace_update_alone_creates_an_in_progress_trace(store: SqlStore, exp: str) -> None:
    tid = "tr-" + new_trace_hex()
    [r] = store.write_spans([SpanBatch(exp, [], [TraceUpdate(tid, exp, tags={"k": "v"})])])
    assert r == IngestResult(1, 0, 0)
    info = store.get_trace_info(tid)
    assert (info.state, info.tags, info.span_count) == ("IN_PROGRESS", {"k": "v"}, 0)
    spans = make_trace(tid[3:])
    store.write_spans([batch(exp, spans)])
    assert store.get_trace_info(tid).request_time == T0_NS // 1_000_000


def test_unknown_experiment_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="424242"):
        store.write_spans([batch("424242", make_trace())])


def test_deleted_experiment_rejects_spans(store: SqlStore, exp: str) -> None:
    store.delete_experiment(exp)
    with pytest.raises(InvalidRequest, match="deleted"):
        store.write_spans([batch(exp, make_trace())])


def test_trace_cannot_move_between_experiments(store: SqlStore, exp: str) -> None:
    other = store.create_experiment("other")
    spans = make_trace()
    store.write_spans([batch(exp, spans[:2])])
    with pytest.raises(InvalidRequest, match="belongs to experiment"):
        store.write_spans([batch(other, spans[2:])])


@pytest.mark.parametrize("bad", [
    {"span_id": ""}, {"span_id": "0123456789abcdef0"}, {"status_code": "MAYBE"}, {"parent_span_id": "x" * 17},
])
def test_malformed_spans_are_invalid(store: SqlStore, exp: str, bad: dict[str, str]) -> None:
    span = make_span(new_trace_hex())
    for k, v in bad.items():
        setattr(span, k, v)
    with pytest.raises(InvalidRequest):
        store.write_spans([batch(exp, [span])])


def test_malformed_trace_id_is_invalid(store: SqlStore, exp: str) -> None:
    with pytest.raises(InvalidRequest, match="trace id"):
        store.write_spans([batch(exp, [make_span("not-hex")])])


def test_partial_write_fails_only_the_bad_batch(store: SqlStore, exp: str) -> None:
    good1, good2 = make_trace(), make_trace()
    outcomes = store.write_spans_partial([batch(exp, good1), batch("777", make_trace()), batch(exp, good2)])
    assert isinstance(outcomes[1], NotFound)
    assert outcomes[0] == outcomes[2] == IngestResult(1, 5, 0)
    assert store.count_traces([exp]) == 2


def test_write_spans_is_all_or_nothing(store: SqlStore, exp: str) -> None:
    with pytest.raises(NotFound):
        store.write_spans([batch(exp, make_trace()), batch("777", make_trace())])
    assert store.count_traces([exp]) == 0


def test_every_change_gets_a_higher_seq(store: SqlStore, exp: str) -> None:
    a, b = make_trace(), make_trace()
    store.write_spans([batch(exp, a), batch(exp, b)])
    ta, tb = "tr-" + a[0].trace_id, "tr-" + b[0].trace_id
    first = seq_of(store, ta)
    assert seq_of(store, tb) == first  # one transaction, one value
    store.set_trace_tag(ta, "k", "v")
    after_tag = seq_of(store, ta)
    assert after_tag > first and seq_of(store, tb) == first
    store.write_spans([batch(exp, [make_span(b[0].trace_id, parent=b[0].span_id)])])
    assert seq_of(store, tb) > after_tag


def test_start_trace_creates_then_merges(store: SqlStore, exp: str) -> None:
    tid = "tr-" + new_trace_hex()
    info = TraceInfo(trace_id=tid, experiment_id=exp, request_time=1_000, state="OK", execution_duration=40,
                     client_request_id="c1", request_preview="in", response_preview="out",
                     trace_metadata={"mlflow.trace.user": "bob", "m": "1"}, tags={"t": "1"})
    stored = store.start_trace(info)
    assert (stored.state, stored.execution_duration, stored.request_time) == ("OK", 40, 1_000)
    assert (stored.tags, stored.trace_metadata) == ({"t": "1"}, {"mlflow.trace.user": "bob", "m": "1"})
    again = store.start_trace(TraceInfo(trace_id=tid, experiment_id=exp, request_time=1_000, state="OK",
                                        trace_metadata={"m": "2"}, tags={"t": "2"}))
    assert (again.tags, again.trace_metadata["m"], again.client_request_id) == ({"t": "2"}, "1", "c1")
    spans = make_trace(tid[3:])
    store.write_spans([batch(exp, spans)])
    after = store.get_trace_info(tid)
    assert after.span_count == 5 and after.name == "root"
    assert store.count_traces([exp]) == 1


def test_start_trace_needs_an_active_experiment(store: SqlStore, exp: str) -> None:
    tid = "tr-" + new_trace_hex()
    with pytest.raises(NotFound):
        store.start_trace(TraceInfo(trace_id=tid, experiment_id="999", request_time=1))
    store.delete_experiment(exp)
    with pytest.raises(InvalidRequest):
        store.start_trace(TraceInfo(trace_id=tid, experiment_id=exp, request_time=1))
