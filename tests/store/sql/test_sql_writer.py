"""GroupCommitWriter: group commit, per-batch failures, back-pressure, drain on close;
small writes from other threads next to the writer."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from store_factories import batch, make_span, make_trace

from tracelake.errors import LimitExceeded, NotFound, Overloaded
from tracelake.store.base import IngestResult, SpanBatch
from tracelake.store.sql.store import SqlStore
from tracelake.store.sql.writer import GroupCommitWriter


class GatedStore(SqlStore):
    """A real store whose group writes wait for ``gate`` (to hold the writer busy)."""

    gate: threading.Event
    entered: threading.Event
    group_sizes: list[int]

    def write_spans_partial(self, batches: list[SpanBatch]) -> list[Any]:
        self.entered.set()
        self.gate.wait(30)
        self.group_sizes.append(len(batches))
        return super().write_spans_partial(batches)


@pytest.fixture
def gated(store_uri: str, tmp_path) -> Any:
    s = GatedStore(store_uri, artifact_root=str(tmp_path / "a"), max_spans_per_trace=10)
    s.gate, s.entered, s.group_sizes = threading.Event(), threading.Event(), []
    yield s
    s.gate.set()
    s.close()


def test_waiting_batches_commit_together_and_resolve_after_commit(gated: GatedStore) -> None:
    writer = GroupCommitWriter(gated, max_queue=100)
    try:
        first = writer.submit(batch("0", make_trace()))
        assert gated.entered.wait(10)
        traces = [make_trace() for _ in range(20)]
        futures = [writer.submit(batch("0", t)) for t in traces]
        assert not any(f.done() for f in futures)
        gated.gate.set()
        assert first.result(10) == IngestResult(1, 5, 0)
        assert [f.result(10) for f in futures] == [IngestResult(1, 5, 0)] * 20
        assert gated.group_sizes == [1, 20]
        # Resolved means committed: visible to a new reader.
        assert gated.count_traces(["0"]) == 21
    finally:
        writer.close()


def test_a_failing_batch_fails_alone(gated: GatedStore) -> None:
    gated.gate.set()
    writer = GroupCommitWriter(gated, max_queue=100)
    try:
        gated.gate.clear()
        blocker = writer.submit(batch("0", make_trace()))
        assert gated.entered.wait(10)
        good1 = writer.submit(batch("0", make_trace()))
        too_big = writer.submit(batch("0", make_trace(children=20)))
        missing = writer.submit(batch("31337", make_trace()))
        good2 = writer.submit(batch("0", make_trace()))
        gated.gate.set()
        assert blocker.result(10).spans_written == 5
        assert good1.result(10).spans_written == good2.result(10).spans_written == 5
        with pytest.raises(LimitExceeded):
            too_big.result(10)
        with pytest.raises(NotFound):
            missing.result(10)
        assert gated.count_traces(["0"]) == 3
    finally:
        writer.close()


def test_full_queue_raises_overloaded_at_once(gated: GatedStore) -> None:
    writer = GroupCommitWriter(gated, max_queue=3, retry_after=2.5)
    try:
        writer.submit(batch("0", make_trace()))
        assert gated.entered.wait(10)
        queued = [writer.submit(batch("0", make_trace())) for _ in range(3)]
        with pytest.raises(Overloaded) as info:
            writer.submit(batch("0", make_trace()))
        assert info.value.retry_after == 2.5
        gated.gate.set()
        assert all(f.result(10).spans_written == 5 for f in queued)
        writer.submit(batch("0", make_trace())).result(10)  # room again
    finally:
        writer.close()


def test_close_drains_accepted_batches_then_refuses(gated: GatedStore) -> None:
    writer = GroupCommitWriter(gated, max_queue=50)
    first = writer.submit(batch("0", make_trace()))
    assert gated.entered.wait(10)
    rest = [writer.submit(batch("0", make_trace())) for _ in range(5)]
    closer = threading.Thread(target=writer.close)
    closer.start()
    gated.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert first.done() and all(f.result(0) == IngestResult(1, 5, 0) for f in rest)
    with pytest.raises(Overloaded):
        writer.submit(batch("0", make_trace()))


def test_a_database_error_in_a_group_is_isolated(store: SqlStore) -> None:
    """A batch the database itself rejects (a token count beyond 64 bits) fails alone: the
    writer retries the group one batch at a time."""
    writer = GroupCommitWriter(store, max_queue=50)
    try:
        gate = threading.Event()
        writer.submit(SpanBatch("0", [])).add_done_callback(lambda _: gate.wait(10))
        futures = [writer.submit(batch("0", make_trace())) for _ in range(3)]
        bad = writer.submit(batch("0", [make_span("cd" * 16, input_tokens=2**70)]))
        gate.set()
        assert all(f.result(10).spans_written == 5 for f in futures)
        with pytest.raises(Exception, match="(?i)too large|out of range"):
            bad.result(10)
        assert store.count_traces(["0"]) == 3
        assert writer.commits == 1 + 1 + 4  # the empty batch, the failed group, one by one
    finally:
        writer.close()


def test_small_writes_from_threads_while_the_writer_ingests(store: SqlStore, exp: str) -> None:
    """Tags, assessments and reads from a thread pool next to the writer: no 'database is locked'."""
    seeds = [make_trace() for _ in range(10)]
    store.write_spans([batch(exp, t) for t in seeds])
    writer = GroupCommitWriter(store, max_queue=1000)
    errors: list[BaseException] = []

    def tagger(i: int) -> None:
        try:
            for j in range(15):
                tid = seeds[(i + j) % len(seeds)][0].trace_id
                store.set_trace_tag(tid, f"t{i}", str(j))
                store.get_trace(tid)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    try:
        with ThreadPoolExecutor(8) as pool:
            tag_jobs = [pool.submit(tagger, i) for i in range(6)]
            futures = [writer.submit(batch(exp, make_trace())) for _ in range(200)]
            for job in tag_jobs:
                job.result(60)
        assert all(f.result(60).spans_written == 5 for f in futures)
    finally:
        writer.close()
    assert errors == []
    assert store.count_traces([exp]) == 210
    assert store.get_trace_info(seeds[0][0].trace_id).tags.keys() >= {"t0"}
