"""Retention: by age, by count per experiment, with offloaded artifacts removed."""
from __future__ import annotations

import time
from pathlib import Path

from store_factories import batch, make_span, make_trace, new_trace_hex

from tracelake.store.sql.store import SqlStore


def recent_trace(age_ms: int, **fields: object) -> list:
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - age_ms
    tid = new_trace_hex()
    root = make_span(tid, name="root", duration_ms=5, **fields)
    root.start_time_ns = start_ms * 1_000_000
    root.end_time_ns = root.start_time_ns + 5_000_000
    return [root]


def test_max_age(store: SqlStore, exp: str) -> None:
    old = [recent_trace(3_600_000) for _ in range(3)]
    new = [recent_trace(1_000) for _ in range(2)]
    store.write_spans([batch(exp, t) for t in old + new])
    assert store.apply_retention(max_age_ms=600_000, max_traces=None) == 3
    assert store.count_traces([exp]) == 2


def test_max_traces_keeps_the_newest_per_experiment(store: SqlStore, exp: str) -> None:
    other = store.create_experiment("other")
    mine = [make_trace(start_ms=i) for i in range(6)]
    store.write_spans([batch(exp, t) for t in mine] + [batch(other, make_trace()) for _ in range(2)])
    assert store.apply_retention(max_age_ms=None, max_traces=4) == 2
    kept = {i.trace_id for i in store.search_traces([exp]).items}
    assert kept == {"tr-" + t[0].trace_id for t in mine[2:]}
    assert store.count_traces([other]) == 2
    assert store.apply_retention(None, 4) == 0


def test_retention_of_one_experiment_only(store: SqlStore, exp: str) -> None:
    other = store.create_experiment("other")
    store.write_spans([batch(e, make_trace()) for e in (exp, exp, other, other)])
    assert store.apply_retention(None, 1, experiment_id=exp) == 1
    assert (store.count_traces([exp]), store.count_traces([other])) == (1, 2)


def test_retention_removes_offloaded_content(store: SqlStore, exp: str, artifact_root: Path) -> None:
    trace = recent_trace(7_200_000, inputs='"' + "z" * 10_000 + '"')
    store.write_spans([batch(exp, trace)])
    folder = artifact_root / exp / "traces" / ("tr-" + trace[0].trace_id)
    assert folder.is_dir()
    assert store.apply_retention(max_age_ms=3_600_000, max_traces=None) == 1
    assert not folder.exists()


def test_disabled_rules_delete_nothing(store: SqlStore, exp: str) -> None:
    store.write_spans([batch(exp, make_trace())])
    assert store.apply_retention(None, None) == 0
    assert store.apply_retention(0, 0) == 0
