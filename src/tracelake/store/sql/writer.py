"""``GroupCommitWriter``: one thread that commits many ingest batches per transaction.

Request handlers ``submit`` a batch and await the returned future; the writer takes
everything waiting (up to a cap), writes it in ONE transaction and resolves each future
only after the commit, so an answer always means "durably stored". A batch that fails
validation or a limit gets its own exception; its neighbours still commit. When the queue
is full ``submit`` raises ``Overloaded`` at once (the server answers 503 + Retry-After)
instead of letting requests pile up.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from tracelake.errors import Overloaded, TracelakeError
from tracelake.store.base import IngestResult, SpanBatch, Store

log = logging.getLogger(__name__)

MAX_BATCHES_PER_COMMIT = 1_000
MAX_SPANS_PER_COMMIT = 50_000


def _span_count(batch: Any) -> int:
    count = getattr(batch, "span_count", None)  # a store's prepared batch (see SqlStore.prepare_spans)
    return count if count is not None else len(batch.spans)


@dataclass(slots=True)
class _Item:
    batch: SpanBatch
    future: Future[IngestResult]


class GroupCommitWriter:
    """Owns the store's ingest writes. ``close()`` drains what was accepted, then stops."""

    def __init__(self, store: Store, max_queue: int, retry_after: float = 1.0,
                 max_batches_per_commit: int = MAX_BATCHES_PER_COMMIT,
                 max_spans_per_commit: int = MAX_SPANS_PER_COMMIT) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.store = store
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.max_batches_per_commit = max_batches_per_commit
        self.max_spans_per_commit = max_spans_per_commit
        self.commits = 0  # transactions run (for tests and metrics)
        self._pending: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tracelake-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: SpanBatch) -> Future[IngestResult]:
        """Queue ``batch`` (a ``SpanBatch``, or what the store's ``prepare_spans`` made of one);
        the future resolves after its commit. Raises ``Overloaded`` when full."""
        future: Future[IngestResult] = Future()
        with self._cond:
            if self._closed:
                raise Overloaded("The trace writer is shutting down", retry_after=self.retry_after)
            if len(self._pending) >= self.max_queue:
                raise Overloaded(f"The trace writer has {len(self._pending)} batches waiting; retry later",
                                 retry_after=self.retry_after)
            self._pending.append(_Item(batch, future))
            self._cond.notify()
        return future

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._pending)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting batches, commit those already accepted, stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            self._commit(group)

    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            group: list[_Item] = []
            spans = 0
            while self._pending and len(group) < self.max_batches_per_commit:
                if group and spans + _span_count(self._pending[0].batch) > self.max_spans_per_commit:
                    break
                item = self._pending.popleft()
                spans += _span_count(item.batch)
                group.append(item)
        return [item for item in group if item.future.set_running_or_notify_cancel()]

    def _commit(self, group: list[_Item]) -> None:
        if not group:
            return
        outcomes, transactions = write_group(self.store, [item.batch for item in group])
        self.commits += transactions
        for item, outcome in zip(group, outcomes):
            settle(item.future, outcome)


def settle(future: Future[Any], outcome: Any) -> None:
    """Resolve a batch's future with its outcome: an exception, or its result."""
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def write_group(store: Store, batches: list[Any]) -> tuple[list[Any], int]:
    """Write ``batches`` in one transaction: an ``IngestResult`` or the exception, per batch,
    and the number of transactions it took.

    A batch that fails validation or a limit gets its own exception and its neighbours still
    commit. An unexpected error may come from one bad batch: then they are retried one by one,
    so only that one fails."""
    try:
        return _write(store, batches), 1
    except Exception as exc:  # noqa: BLE001 - the writer must survive; the batches carry the error
        if len(batches) > 1 and not isinstance(exc, TracelakeError):
            log.warning("group commit of %d batches failed (%s); retrying one by one", len(batches), exc)
            outcomes: list[Any] = []
            for batch in batches:
                try:
                    outcomes.append(_write(store, [batch])[0])
                except Exception as one:  # noqa: BLE001 - reported to the one request it belongs to
                    log.error("commit of one batch failed: %s", one)
                    outcomes.append(one)
            return outcomes, 1 + len(batches)
        log.error("group commit failed: %s", exc)
        return [exc] * len(batches), 1


def _write(store: Store, batches: list[Any]) -> list[Any]:
    partial = getattr(store, "write_spans_partial", None)
    if partial is not None:
        return list(partial(batches))
    # Any other Store: all-or-nothing per call, so isolate a failing batch by retrying alone.
    try:
        return list(store.write_spans(batches))
    except TracelakeError:
        if len(batches) == 1:
            raise
    outcomes: list[Any] = []
    for batch in batches:
        try:
            outcomes.extend(store.write_spans([batch]))
        except TracelakeError as exc:
            outcomes.append(exc)
    return outcomes
