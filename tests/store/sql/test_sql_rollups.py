"""Per-minute rollups written at ingest and read by get_metrics (percentiles from the histogram)."""
from __future__ import annotations

import pytest
from store_factories import T0_NS, batch, make_span, make_trace

from tracelake.entities import TraceInfo
from tracelake.errors import NotFound
from tracelake.store.sql.rollups import LATENCY_BUCKETS_MS, bucket_index, percentile
from tracelake.store.sql.store import SqlStore

MINUTE = T0_NS // 1_000_000 // 60_000


def test_completed_traces_are_counted_per_minute(store: SqlStore, exp: str) -> None:
    latencies = [3, 8, 15, 40, 90, 150, 300, 700, 1500, 4000]
    traces = [make_trace(root_ms=ms, start_ms=i, status="ERROR" if i % 5 == 0 else "OK",
                         input_tokens=10, output_tokens=2, cost=0.25) for i, ms in enumerate(latencies)]
    next_minute = make_trace(root_ms=20, start_ms=60_000)
    store.write_spans([batch(exp, t) for t in traces] + [batch(exp, next_minute)])
    points = store.get_metrics(exp, MINUTE, MINUTE + 10)
    assert [p.minute for p in points] == [MINUTE, MINUTE + 1]
    p = points[0]
    assert (p.requests, p.errors, p.input_tokens, p.output_tokens) == (10, 2, 100, 20)
    assert p.cost == pytest.approx(2.5)
    assert p.latency_p50_ms is not None and 50 <= p.latency_p50_ms <= 200
    assert p.latency_p95_ms is not None and 2000 <= p.latency_p95_ms <= 5000
    assert p.latency_p99_ms is not None and p.latency_p95_ms <= p.latency_p99_ms <= 5000
    assert store.get_metrics(exp, MINUTE + 1, MINUTE + 2)[0].requests == 1  # half-open range


def test_in_progress_and_resent_traces_are_not_counted(store: SqlStore, exp: str) -> None:
    root, *kids = make_trace()
    store.write_spans([batch(exp, kids)])
    assert store.get_metrics(exp, MINUTE, MINUTE + 1) == []
    store.write_spans([batch(exp, [root])])
    store.write_spans([batch(exp, [root, *kids])])
    assert store.get_metrics(exp, MINUTE, MINUTE + 1)[0].requests == 1


def test_usage_of_spans_after_completion_is_added(store: SqlStore, exp: str) -> None:
    root = make_span("ab" * 16, name="root", duration_ms=50, input_tokens=5)
    store.write_spans([batch(exp, [root])])
    late = make_span("ab" * 16, parent=root.span_id, input_tokens=7, output_tokens=1, cost=0.1)
    store.write_spans([batch(exp, [late])])
    [p] = store.get_metrics(exp, MINUTE, MINUTE + 1)
    assert (p.requests, p.input_tokens, p.output_tokens, p.cost) == (1, 12, 1, pytest.approx(0.1))


def test_rollups_merge_across_transactions(store: SqlStore, exp: str) -> None:
    for ms in (5, 5, 5, 500):
        store.write_spans([batch(exp, make_trace(root_ms=ms))])
    [p] = store.get_metrics(exp, MINUTE, MINUTE + 1)
    assert p.requests == 4
    assert p.latency_p50_ms is not None and p.latency_p50_ms <= 5
    assert p.latency_p99_ms is not None and 200 <= p.latency_p99_ms <= 500


def test_start_trace_completion_counts_once(store: SqlStore, exp: str) -> None:
    spans = make_trace(root_ms=30)
    tid = "tr-" + spans[0].trace_id
    store.start_trace(TraceInfo(tid, exp, request_time=T0_NS // 1_000_000, state="OK", execution_duration=30))
    store.write_spans([batch(exp, spans)])
    store.start_trace(TraceInfo(tid, exp, request_time=T0_NS // 1_000_000, state="OK", execution_duration=30))
    assert store.get_metrics(exp, MINUTE, MINUTE + 1)[0].requests == 1


def test_metrics_of_unknown_experiment(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_metrics("999", 0, 1)


@pytest.mark.parametrize(("counts", "q", "expected"), [
    ([0] * len(LATENCY_BUCKETS_MS), 0.5, None),
    ([4] + [0] * (len(LATENCY_BUCKETS_MS) - 1), 0.5, 0.5),  # inside [0, 1]
    ([0, 0, 0, 10] + [0] * (len(LATENCY_BUCKETS_MS) - 4), 0.99, 9.95),  # inside (5, 10]
    ([0] * (len(LATENCY_BUCKETS_MS) - 1) + [3], 0.5, 60_000.0),  # unbounded bucket: its lower bound
])
def test_percentile_estimate(store: SqlStore, counts: list[int], q: float, expected: float | None) -> None:
    got = percentile(counts, q)
    assert got == (None if expected is None else pytest.approx(expected))
    assert bucket_index(0) == 0 and bucket_index(1) == 0 and bucket_index(1.5) == 1
    assert bucket_index(10**9) == len(LATENCY_BUCKETS_MS) - 1
