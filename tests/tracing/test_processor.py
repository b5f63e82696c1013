"""The batch processor: bounded queue with a drop counter, flush, masking, isolation from the app."""
from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import tracelake
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.exporters.memory import InMemorySpanExporter
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.processor import BatchSpanProcessor
from tracelake.tracing.wire import span_row

from .conftest import free_port


class BlockedExporter(SpanExporter):
    """Never finishes an export until released: the queue can only fill up."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans):
        self.calls += 1
        self.release.wait(10)
        return True


def test_full_queue_drops_spans_counts_them_and_warns_once(caplog):
    blocked = BlockedExporter()
    tracelake.configure(exporter=blocked, max_queue_size=50, max_export_batch_size=10, schedule_delay_s=0.01)

    @tracelake.trace
    def op(i):
        return i

    with caplog.at_level(logging.WARNING, logger="tracelake"):
        for i in range(1_000):
            op(i)
    stats = tracelake.get_export_stats()
    assert stats.queued <= 50 + 10  # the queue bound, plus at most one batch being exported
    assert stats.dropped >= 1_000 - 60
    assert stats.dropped + stats.queued + stats.exported + stats.failed == 1_000
    assert [r.message for r in caplog.records].count(
        "tracelake: the export queue is full (50 spans); dropping spans "
        "(see tracelake.get_export_stats().dropped)") == 1
    blocked.release.set()


def test_unreachable_server_keeps_the_queue_bounded_and_never_raises(caplog):
    tracelake.configure(tracking_uri=f"http://127.0.0.1:{free_port()}", max_queue_size=100,
                        max_export_batch_size=20, schedule_delay_s=0.01, exit_flush_timeout_s=0.2)

    @tracelake.trace
    def op(i):
        return i

    for i in range(5_000):
        assert op(i) == i
    stats = tracelake.get_export_stats()
    assert stats.queued <= 120
    assert stats.exported == 0
    assert stats.dropped >= 5_000 - 120 - stats.failed
    assert stats.dropped + stats.queued + stats.failed == 5_000


def test_flush_exports_everything_finished_before_it(exporter):
    for i in range(1_234):
        tracelake.start_span(f"s{i}").end()
    assert tracelake.flush(10)
    assert len(exporter.get_finished_spans()) == 1_234
    assert tracelake.get_export_stats().exported == 1_234


def test_failing_exporter_is_isolated_from_the_app_and_from_other_exporters(caplog):
    class Crashing(SpanExporter):
        def export(self, spans):
            raise RuntimeError("exporter bug")

    memory = InMemorySpanExporter()
    tracelake.configure(exporter=[Crashing(), memory])
    with tracelake.start_span("fine"):
        pass
    assert tracelake.flush(10)
    assert [s.name for s in memory.get_finished_spans()] == ["fine"]
    assert tracelake.get_export_stats().failed == 1
    assert "Crashing failed" in caplog.text


def test_masking_function_redacts_inputs_and_outputs_before_export():
    def mask(value):
        if isinstance(value, dict):
            return {k: "***" if k in ("password", "ssn") else mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory, masking=mask)

    @tracelake.trace
    def login(user, password):
        return {"user": user, "ssn": "123-45", "items": [{"password": "x"}]}

    login("ann", "hunter2")
    assert tracelake.flush(10)
    (span,) = memory.get_finished_spans()
    assert span.inputs == {"user": "ann", "password": "***"}
    assert span.outputs == {"user": "ann", "ssn": "***", "items": [{"password": "***"}]}


def test_failing_masking_function_exports_a_placeholder_not_the_value(caplog):
    def mask(value):
        raise RuntimeError("bug in mask")

    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory, masking=mask)
    with tracelake.start_span("secret") as span:
        span.set_inputs({"password": "hunter2"})
    assert tracelake.flush(10)
    (got,) = memory.get_finished_spans()
    assert "hunter2" not in got._inputs
    assert got.inputs == "[masked: the masking function failed]"


def test_spans_made_on_the_export_thread_are_never_exported():
    @tracelake.trace
    def traced_mask(value):
        return value

    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory, masking=traced_mask)
    with tracelake.start_span("app"):
        pass
    assert tracelake.flush(10)
    assert tracelake.flush(10)
    assert [s.name for s in memory.get_finished_spans()] == ["app"]


def test_shutdown_then_force_flush_returns_without_blocking():
    processor = BatchSpanProcessor([InMemorySpanExporter()])
    assert processor.shutdown(5)
    assert processor.force_flush(5)


def _run(script: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_spans_are_flushed_at_interpreter_exit(tmp_path):
    out = tmp_path / "spans.jsonl"
    result = _run(f"""
        import tracelake
        tracelake.configure(tracking_uri="file://{out}", schedule_delay_s=60)
        with tracelake.start_span("last-words"):
            pass
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"name":"last-words"' in out.read_text()


def test_export_thread_restarts_in_a_forked_child(tmp_path):
    out = tmp_path / "spans.jsonl"
    result = _run(f"""
        import os, tracelake
        tracelake.configure(tracking_uri="file://{out}")
        with tracelake.start_span("parent-before-fork"):
            pass
        tracelake.flush()
        pid = os.fork()
        if pid == 0:
            with tracelake.start_span("child-span"):
                pass
            ok = tracelake.flush(10)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.count('"name":"child-span"') == 1
    assert text.count('"name":"parent-before-fork"') == 1


class RowsExporter(SpanExporter):
    """Takes native rows; ``release`` gates each export (set by default)."""

    takes_rows = True

    def __init__(self):
        self.rows = []
        self.release = threading.Event()
        self.release.set()

    def export_rows(self, rows):
        self.release.wait(10)
        self.rows.extend(rows)
        return True


def _full_trace():
    with tracelake.start_span("agent", span_type=tracelake.SpanType.AGENT) as root:
        root.set_inputs({"q": "hi"})
        tracelake.update_current_trace(tags={"t": "1"})
        with tracelake.start_span("llm", span_type=tracelake.SpanType.LLM) as llm:
            llm.set_token_usage(3, 4)
            llm.set_attributes({"temperature": 0.5})
            llm.add_event("retry", {"attempt": 1})
            llm.set_outputs("hello")
    return root, llm


def test_exporters_taking_rows_get_the_same_rows_as_wire_span_row():
    rows = RowsExporter()
    tracelake.configure(exporter=rows)
    root, llm = _full_trace()
    assert tracelake.flush(10)
    assert rows.rows == [span_row(llm), span_row(root)]
    assert tracelake.get_export_stats().exported == 2


def test_with_an_exporter_that_takes_spans_every_exporter_gets_spans():
    rows, memory = RowsExporter(), InMemorySpanExporter()
    rows.export = lambda spans: rows.rows.extend(spans) or True
    tracelake.configure(exporter=[rows, memory])
    root, llm = _full_trace()
    assert tracelake.flush(10)
    assert rows.rows == memory.get_finished_spans() == [llm, root]


def test_queued_rows_are_not_tracked_by_the_garbage_collector():
    rows = RowsExporter()
    rows.release.clear()
    tracelake.configure(exporter=rows, max_export_batch_size=1_000_000, max_queue_size=1_000_000)

    @tracelake.trace
    def op(i):
        return i

    for i in range(1000):
        op(i)
    gc.collect()
    queue = list(RUNTIME.processor._queue)
    assert len(queue) == 1000
    assert not any(gc.is_tracked(row) for row in queue)
    rows.release.set()
    assert tracelake.flush(10)


def test_masking_applies_to_rows_and_leaves_the_span_alone():
    rows = RowsExporter()
    tracelake.configure(exporter=rows, masking=lambda value: "***" if value == "hunter2" else value)
    with tracelake.start_span("login") as span:
        span.set_inputs("hunter2")
        span.set_outputs("ok")
    assert tracelake.flush(10)
    ((*_, inputs, outputs, _attrs, _events, _usage, _trace),) = rows.rows
    assert (inputs, outputs) == ('"***"', '"ok"')
    assert span.inputs == "hunter2"


def test_a_backlog_in_flight_counts_against_the_queue_bound():
    rows = RowsExporter()
    rows.release.clear()
    tracelake.configure(exporter=rows, max_queue_size=100, max_export_batch_size=10, schedule_delay_s=60)
    for i in range(95):
        tracelake.start_span(f"s{i}").end()
    RUNTIME.processor._wake.set()  # the export thread takes all 95, then waits
    for _ in range(200):
        if tracelake.get_export_stats().queued == 95 and not RUNTIME.processor._queue:
            break
        time.sleep(0.01)
    for i in range(100):
        tracelake.start_span(f"t{i}").end()
    stats = tracelake.get_export_stats()
    assert stats.queued == 100 + 10  # max_queue_size + max_export_batch_size
    assert stats.dropped == 95 + 100 - 110
    rows.release.set()
    assert tracelake.flush(10)
