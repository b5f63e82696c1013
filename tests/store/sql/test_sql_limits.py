"""Limits: each violation fails its own batch (LimitExceeded), never its neighbours."""
from __future__ import annotations

from pathlib import Path

import pytest
from store_factories import batch, make_span, make_trace, new_trace_hex

from tracelake.errors import LimitExceeded
from tracelake.store.base import IngestResult
from tracelake.store.sql.store import SqlStore


@pytest.fixture
def limited(store_uri: str, tmp_path: Path):
    s = SqlStore(store_uri, artifact_root=str(tmp_path / "a"), max_spans_per_trace=6,
                 max_traces_per_experiment=3, max_trace_bytes=10_000, offload_span_bytes=2_000)
    yield s
    s.close()


def test_spans_per_trace_limit_over_several_batches(limited: SqlStore) -> None:
    tid = new_trace_hex()
    spans = make_trace(tid, children=7)  # 8 spans, limit 6
    assert limited.write_spans([batch("0", spans[:4])]) == [IngestResult(1, 4, 0)]
    other = make_trace()
    outcomes = limited.write_spans_partial([batch("0", spans[4:]), batch("0", other)])
    assert isinstance(outcomes[0], LimitExceeded) and "spans per trace" in str(outcomes[0])
    assert outcomes[1] == IngestResult(1, 5, 0)
    assert limited.get_trace_info(tid).span_count == 4


def test_resending_spans_near_the_limit_is_not_an_error(limited: SqlStore) -> None:
    spans = make_trace(children=5)  # exactly 6
    limited.write_spans([batch("0", spans)])
    assert limited.write_spans([batch("0", spans)]) == [IngestResult(1, 0, 6)]


def test_one_batch_above_the_span_limit_fails_before_anything_is_written(limited: SqlStore) -> None:
    spans = make_trace(children=10)
    with pytest.raises(LimitExceeded):
        limited.write_spans([batch("0", spans)])
    assert limited.count_traces(["0"]) == 0


def test_traces_per_experiment_limit(limited: SqlStore) -> None:
    eid = limited.create_experiment("capped")
    outcomes = limited.write_spans_partial([batch(eid, make_trace()) for _ in range(5)])
    assert [type(o).__name__ for o in outcomes] == ["IngestResult"] * 3 + ["LimitExceeded"] * 2
    assert "maximum of 3 traces" in str(outcomes[3])
    assert limited.count_traces([eid]) == 3
    # Spans of an existing trace are still accepted at the cap.
    first = limited.search_traces([eid]).items[0].trace_id
    [r] = limited.write_spans([batch(eid, [make_span(first[3:])])])
    assert r.spans_written == 1
    # Deleting frees room.
    limited.delete_traces(eid, trace_ids=[first])
    assert isinstance(limited.write_spans_partial([batch(eid, make_trace())])[0], IngestResult)


def test_trace_bytes_limit(limited: SqlStore) -> None:
    tid = new_trace_hex()
    big = '"' + "x" * 4_000 + '"'
    first = [make_span(tid, inputs=big), make_span(tid, inputs=big)]
    limited.write_spans([batch("0", first)])
    outcomes = limited.write_spans_partial([batch("0", [make_span(tid, inputs=big)]), batch("0", make_trace())])
    assert isinstance(outcomes[0], LimitExceeded) and "bytes" in str(outcomes[0])
    assert isinstance(outcomes[1], IngestResult)
    assert limited.get_trace_info(tid).span_count == 2
