"""``ProcessWriter``: the group-commit writer in a child process of ``tracelake server``.

In one process the writer thread shares the interpreter lock with the request threads that
decode and prepare batches: it gives the lock up inside every SQLite call and fsync, and
waits to get it back. Measured on the ingest bench, the writer spent 21 µs of wall time per
span inside its SQLite insert, against 8 µs when nothing else runs. Here it has a process
(and an interpreter lock) of its own:

    server process                                   writer process
    request thread: decode, validate, build rows
      ``submit(batch)`` -> queue -> sender thread  -- pipe -->  reader thread: unpickle
                                                                writer: take what arrived,
    receiver thread: resolve the requests' futures <-- pipe --  commit it (fsync), answer

The answer still waits for the commit: a future resolves only when the child reports the
batch's outcome, which it does after the transaction that holds it committed. Batches cross
as their rows (``SpanRecord`` pickles without its ``Span``). The child opens its own store
from the settings; ``close()`` drains what was accepted, and if the child dies, every batch
it had not answered fails (the client retries: nothing unanswered was acknowledged).
"""
from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing
import pickle
import signal
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any

from tracelake.errors import Overloaded, TracelakeError
from tracelake.settings import Settings
from tracelake.store.base import IngestResult
from tracelake.store.sql.writer import MAX_BATCHES_PER_COMMIT, MAX_SPANS_PER_COMMIT, settle, write_group

log = logging.getLogger("tracelake.server")

_STOP = b""  # the sender's last message: the child drains and exits


class ProcessWriter:
    """The ``GroupCommitWriter`` interface (``submit``, ``queued``, ``close``) over a child
    process. A child that dies is replaced: the batches it had not answered fail (503; they
    were never acknowledged) and the next ones go to the new child."""

    def __init__(self, settings: Settings, max_queue: int, retry_after: float = 1.0) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.settings = settings
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.restarts = 0
        self._ids = itertools.count()
        self._futures: dict[int, Future[IngestResult]] = {}
        self._outbox: deque[tuple[int, Any]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._generation = 0
        self._started = False

    def start(self) -> None:
        """Start the child (the app's lifespan does: building an app spawns nothing)."""
        with self._cond:
            if self._started or self._closed:
                return
            self._started = True
            self._start()
        # The child ignores SIGTERM, so multiprocessing's exit handler (terminate, then join)
        # would wait for it forever: a writer still open at interpreter exit is closed first.
        atexit.register(self.close, 60)

    def _start(self) -> None:
        """A child and its two threads, for the current generation (call with nothing in flight)."""
        ctx = multiprocessing.get_context("spawn")  # never fork a process that has threads
        to_child_r, to_child = ctx.Pipe(duplex=False)
        from_child, from_child_w = ctx.Pipe(duplex=False)
        _widen(to_child)
        self.process = ctx.Process(target=_child_main, args=(self.settings, to_child_r, from_child_w),
                                   name="tracelake-writer", daemon=True)
        self.process.start()
        to_child_r.close()
        from_child_w.close()
        generation = self._generation
        self._sender = threading.Thread(target=self._send_loop, args=(generation, to_child),
                                        name="tracelake-writer-send", daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, args=(generation, from_child, self.process),
                                          name="tracelake-writer-receive", daemon=True)
        self._sender.start()
        self._receiver.start()

    def submit(self, batch: Any) -> Future[IngestResult]:
        """Queue ``batch`` (what the store's ``prepare_spans`` made); the future resolves after
        its commit. Raises ``Overloaded`` when full or stopping."""
        future: Future[IngestResult] = Future()
        with self._cond:
            if self._closed or not self._started:
                raise Overloaded("The trace writer is " + ("shutting down" if self._closed else "not started yet"),
                                 retry_after=self.retry_after)
            if len(self._futures) >= self.max_queue:
                raise Overloaded(f"The trace writer has {len(self._futures)} batches waiting; retry later",
                                 retry_after=self.retry_after)
            key = next(self._ids)
            self._futures[key] = future
            self._outbox.append((key, batch))
            self._cond.notify_all()
        return future

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._futures)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting batches, let the child commit those already accepted, wait for it."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            if not self._started:
                return
        self._sender.join(timeout)
        self._receiver.join(timeout)
        self.process.join(timeout)
        if self.process.is_alive():  # pragma: no cover - a child stuck past the timeout
            self.process.terminate()
            self.process.join(10)

    # -- threads of the server process (one pair per child) ---------------------------------
    def _send_loop(self, generation: int, pipe: Any) -> None:
        try:
            while True:
                with self._cond:
                    while not self._outbox and not self._closed and generation == self._generation:
                        self._cond.wait()
                    if generation != self._generation:  # this child died: the new sender takes over
                        return
                    items = list(self._outbox)
                    self._outbox.clear()
                    closing = self._closed and not items
                if closing:
                    pipe.send_bytes(_STOP)
                    return
                for key, batch in items:
                    pipe.send_bytes(pickle.dumps((key, batch), protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, EOFError) as exc:  # the child is gone: its receiver fails what is pending
            log.error("the writer process does not take batches any more: %s", exc)
        finally:
            pipe.close()

    def _receive_loop(self, generation: int, pipe: Any, process: Any) -> None:
        try:
            while True:
                answers = pickle.loads(pipe.recv_bytes())
                with self._cond:
                    futures = [(self._futures.pop(key, None), outcome) for key, outcome in answers]
                for future, outcome in futures:
                    if future is not None:
                        settle(future, outcome)
        except (OSError, EOFError):  # the child ended (after a drain, or it died)
            pass
        pipe.close()
        process.join(30)
        with self._cond:
            # Everything sent to this child and not answered, and what was waiting to be sent
            # (its sender may have taken it): none of it was acknowledged; the clients retry.
            left = list(self._futures.values())
            self._futures.clear()
            self._outbox.clear()
            restart = not self._closed
            if restart:
                self._generation += 1
                self.restarts += 1
            self._cond.notify_all()
        for future in left:
            future.set_exception(Overloaded("The trace writer stopped before committing this batch",
                                            retry_after=self.retry_after))
        if restart:
            log.error("the writer process ended (exit code %s); starting a new one", process.exitcode)
            with self._cond:
                self._start()


# -- the child process ------------------------------------------------------------------------

def _child_main(settings: Settings, inbox: Any, outbox: Any) -> None:
    """Open the store; then take every batch that has arrived, write them in one transaction,
    answer them, again (a reader thread receives and unpickles meanwhile)."""
    from tracelake.server.memory import shorten_switch_interval, tune_server_process
    from tracelake.store.sql.store import SqlStore

    # Only the server ends this process (a goodbye on the pipe, or the pipe closing when the
    # server is gone): a SIGTERM or Ctrl-C sent to the whole process group must not kill it
    # with batches in flight; the server's shutdown drains it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_server_process()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = SqlStore.from_settings(settings, migrate=False)  # the server migrated it
    # A reader thread drains the pipe and unpickles while the writer thread is inside SQLite
    # or fsync (both without the interpreter lock), so neither waits for the other for long.
    arrived: deque[tuple[int, Any] | None] = deque()  # (key, batch); None: stop
    cond = threading.Condition()
    shorten_switch_interval()

    def read() -> None:
        while True:
            try:
                message = inbox.recv_bytes()
            except (EOFError, OSError):  # the server died without a goodbye: commit what we have
                message = _STOP
            try:
                item = None if message == _STOP else pickle.loads(message)
            except Exception:  # noqa: BLE001 - never hang: end, the server fails what is pending
                log.exception("the writer process received a batch it cannot read; stopping")
                item = None
            with cond:
                arrived.append(item)
                cond.notify()
            if item is None:
                return

    threading.Thread(target=read, name="tracelake-writer-read", daemon=True).start()
    stopping = False
    try:
        while not stopping:
            keys: list[int] = []
            batches: list[Any] = []
            with cond:
                while not arrived:
                    cond.wait()
                spans = 0
                while arrived and len(batches) < MAX_BATCHES_PER_COMMIT and spans < MAX_SPANS_PER_COMMIT:
                    item = arrived.popleft()
                    if item is None:
                        stopping = True
                        break
                    keys.append(item[0])
                    batches.append(item[1])
                    spans += getattr(item[1], "span_count", 0)
            if batches:
                answers = list(zip(keys, write_group(store, batches)[0]))
                try:
                    outbox.send_bytes(_dump(answers))
                except OSError:  # the server is gone; nothing to tell
                    break
    finally:
        store.close()
        outbox.close()


def _widen(conn: Any) -> None:
    """Let a pipe hold a few batches (Linux; 64 KB by default): a request's batch then goes in
    one write, not one per 64 KB, each of which takes the interpreter lock back."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size: keep the default
        pass


PIPE_BYTES = 1 << 20


def _dump(answers: list[tuple[int, Any]]) -> bytes:
    try:
        return pickle.dumps(answers, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that does not pickle still fails its batch
        return pickle.dumps([(key, outcome if not isinstance(outcome, BaseException)
                              else TracelakeError(f"{type(outcome).__name__}: {outcome}"))
                             for key, outcome in answers], protocol=pickle.HIGHEST_PROTOCOL)


__all__ = ["ProcessWriter"]
