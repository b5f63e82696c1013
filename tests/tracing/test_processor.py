"""The batch processor: bounded queue with a drop counter, flush, masking, isolation from the app."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import tracelake
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.exporters.memory import InMemorySpanExporter
from tracelake.tracing.processor import BatchSpanProcessor

from .conftest import free_port


class BlockedExporter(SpanExporter):
    """Never finishes an export until released: the queue can only fill up."""

    def __init__(self):
        import threading

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
