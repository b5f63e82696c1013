"""ProcessWriter: the group-commit writer in a child process. Answers come after the commit,
a failing batch fails alone, back-pressure, drain on close, and a child that dies fails
what it had not answered. Batches cross the process boundary as their rows."""
from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from store_factories import batch, make_trace

from tracelake.errors import LimitExceeded, NotFound, Overloaded
from tracelake.settings import Settings
from tracelake.store.base import IngestResult
from tracelake.store.sql.spanrows import RowSpan
from tracelake.store.sql.store import SqlStore
from tracelake.store.sql.writer_process import ProcessWriter


@pytest.fixture
def settings(store_uri: str, artifact_root: Path) -> Settings:
    return Settings().replace(store=store_uri, artifacts=str(artifact_root), max_spans_per_trace=10,
                              offload_span_bytes=4096)


@pytest.fixture
def start_writer(settings: Settings) -> Iterator[Callable[..., ProcessWriter]]:
    """Started ProcessWriters, closed (drained) at teardown."""
    writers: list[ProcessWriter] = []

    def start(max_queue: int = 100) -> ProcessWriter:
        writer = ProcessWriter(settings, max_queue=max_queue)
        writers.append(writer)
        writer.start()
        return writer

    yield start
    for writer in writers:
        writer.close(60)


def _submit(writer: ProcessWriter, store: SqlStore, exp: str, spans: list | None = None,
            **trace_fields: object) -> Future[IngestResult]:
    return writer.submit(store.prepare_spans(batch(exp, spans or make_trace(), **trace_fields)))


def test_building_a_writer_spawns_nothing_until_started(store: SqlStore, exp: str, settings: Settings) -> None:
    writer = ProcessWriter(settings, max_queue=10)
    with pytest.raises(Overloaded, match="not started"):
        _submit(writer, store, exp)
    assert not hasattr(writer, "process")
    writer.close(10)  # nothing to stop


def _hold_write_lock(store: SqlStore) -> threading.Event:
    """Take the store's write lock in a thread until the returned event is set (the child
    then waits for it)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write():
            held.set()
            release.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(10)
    return release


def test_batches_commit_in_the_child_and_resolve_after_commit(store: SqlStore, exp: str, start_writer) -> None:
    writer = start_writer()
    traces = [make_trace() for _ in range(20)]
    futures = [_submit(writer, store, exp, t, tags={"k": "v"}) for t in traces]
    assert [f.result(60) for f in futures] == [IngestResult(1, 5, 0)] * 20
    # Resolved means committed: a reader in this process sees every trace, whole.
    assert store.count_traces([exp]) == 20
    info = store.get_trace_info("tr-" + traces[0][0].trace_id)
    assert info.tags["k"] == "v" and info.state == "OK"
    assert len(store.get_trace("tr-" + traces[3][0].trace_id).spans) == 5


def test_a_failing_batch_fails_alone(store: SqlStore, exp: str, start_writer) -> None:
    writer = start_writer()
    release = _hold_write_lock(store)  # so the three land in one group
    good = _submit(writer, store, exp)
    too_big = _submit(writer, store, exp, make_trace(children=12))
    missing = _submit(writer, store, "987654")
    release.set()
    assert good.result(60) == IngestResult(1, 5, 0)
    with pytest.raises(LimitExceeded, match="spans"):
        too_big.result(60)
    with pytest.raises(NotFound, match="987654"):
        missing.result(60)
    assert store.count_traces([exp]) == 1


def test_a_full_queue_answers_overloaded_at_once(store: SqlStore, exp: str, start_writer) -> None:
    writer = start_writer(max_queue=2)
    release = _hold_write_lock(store)
    waiting = [_submit(writer, store, exp) for _ in range(2)]
    with pytest.raises(Overloaded) as err:
        _submit(writer, store, exp)
    assert err.value.retry_after > 0
    release.set()
    assert [f.result(60) for f in waiting] == [IngestResult(1, 5, 0)] * 2
    _submit(writer, store, exp).result(60)  # room again
    assert store.count_traces([exp]) == 3


def test_close_commits_everything_accepted_then_refuses(store: SqlStore, exp: str, start_writer) -> None:
    writer = start_writer()
    futures = [_submit(writer, store, exp) for _ in range(30)]
    writer.close(60)
    assert all(f.result(0) == IngestResult(1, 5, 0) for f in futures)
    assert store.count_traces([exp]) == 30
    assert not writer.process.is_alive()
    with pytest.raises(Overloaded, match="shutting down"):
        _submit(writer, store, exp)


def test_a_dead_child_fails_what_it_had_not_answered_and_is_replaced(store: SqlStore, exp: str,
                                                                     start_writer) -> None:
    writer = start_writer()
    _submit(writer, store, exp).result(60)
    release = _hold_write_lock(store)
    pending = _submit(writer, store, exp)
    first = writer.process
    first.kill()
    with pytest.raises(Overloaded, match="stopped"):
        pending.result(60)
    release.set()
    assert store.count_traces([exp]) == 1  # the unanswered batch was never acknowledged
    # A new child takes the next batches.
    assert _submit(writer, store, exp).result(60) == IngestResult(1, 5, 0)
    assert writer.restarts == 1 and writer.process is not first and writer.process.is_alive()
    assert store.count_traces([exp]) == 2
    writer.close(60)
    assert not writer.process.is_alive()


def test_a_prepared_batch_crosses_as_rows_with_what_the_writer_reads(store: SqlStore, exp: str) -> None:
    spans = make_trace(children=2, inputs='{"q": "' + "x" * 5000 + '"}', outputs='"ok"')  # root offloaded
    prep = store.prepare_spans(batch(exp, spans))
    copy = pickle.loads(pickle.dumps(prep))
    root = copy.usage["tr-" + spans[0].trace_id].root
    assert isinstance(root.span, RowSpan) and root.blob is not None
    assert root.span.inputs == spans[0].inputs[:1000]  # the preview survives the offload
    assert [r.row for r in copy.records()] == [r.row for r in prep.records()]
    for before, after in zip(prep.records(), copy.records()):
        for name in RowSpan.__slots__:
            if name not in ("inputs", "outputs"):
                assert getattr(after.span, name) == getattr(before.span, name), name
