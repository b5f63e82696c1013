"""Exactly once across crashes: a real ``tracelake lake sync`` process is killed with SIGKILL
(at a chosen step, and repeatedly while it commits), then restarted; every trace, span and
assessment is in the lake exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from tests.lake.helpers import assert_lake_matches_store, ingest, spans_of_trace, table_path, watermark
from tracelake.entities import Assessment
from tracelake.lake.source import ChangeReader

WAIT_S = 120.0  # generous upper bound for a subprocess step (never asserted as a duration)


def _sync_cmd(store_uri: str, lake_root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tracelake.cli", "lake", "sync", "--once", "--store", store_uri,
            "--lake", str(lake_root), *extra]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TRACELAKE_ARTIFACTS": str(tmp_path / "artifacts"), "PYTHONUNBUFFERED": "1"}


def _run_to_end(store_uri: str, lake_root: Path, tmp_path: Path) -> None:
    done = subprocess.run(_sync_cmd(store_uri, lake_root), env=_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr


def _changes(store, exp: str) -> None:
    """New traces, a tag, an assessment and a deletion on top of what landed."""
    ids = ingest(store, exp, [spans_of_trace() for _ in range(30)])
    store.set_trace_tag(ids[0], "after", "crash")
    store.create_assessment(Assessment(assessment_id="", trace_id=ids[1], name="q", kind="feedback", value=1))
    store.delete_traces(exp, trace_ids=ids[2:4])


@pytest.mark.slow
@pytest.mark.parametrize("step", ["read", "committed:traces", "committed:spans"])
def test_sigkill_at_a_step_then_restart_lands_everything_once(store, store_uri, exp, lake_root, tmp_path,
                                                              step) -> None:
    ingest(store, exp, [spans_of_trace() for _ in range(20)])
    _run_to_end(store_uri, lake_root, tmp_path)
    _changes(store, exp)
    proc = subprocess.Popen(_sync_cmd(store_uri, lake_root, "--debug-pause-at", step), env=_env(tmp_path),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the process reached the step
        assert line.strip() == f"paused at {step}", proc.stderr.read() if proc.poll() is not None else line
        before = {name: watermark(lake_root, name) for name in ("traces", "spans", "assessments")}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    if step != "read":  # the kill left the tables at different watermarks
        assert len(set(before.values())) == 2
    _run_to_end(store_uri, lake_root, tmp_path)
    assert_lake_matches_store(store, lake_root)


@pytest.mark.slow
def test_repeated_sigkills_while_committing_never_lose_or_duplicate(store, store_uri, exp, lake_root,
                                                                   tmp_path) -> None:
    for _ in range(8):
        ingest(store, exp, [spans_of_trace(children=2) for _ in range(50)])
    _changes(store, exp)
    final = ChangeReader(store).current_seq()
    cmd = _sync_cmd(store_uri, lake_root, "--max-traces-per-chunk", "20", "--max-spans-per-chunk", "60")
    kills_mid_way = 0
    for _attempt in range(4):
        seen = _mark(lake_root)
        proc = subprocess.Popen(cmd, env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Kill as soon as this process has committed something: it is then inside its next chunk.
        deadline = time.monotonic() + WAIT_S
        while proc.poll() is None and _mark(lake_root) == seen and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
        if (_mark(lake_root) or -1) < final:
            kills_mid_way += 1
    assert kills_mid_way >= 1
    _run_to_end(store_uri, lake_root, tmp_path)
    assert_lake_matches_store(store, lake_root)
    assert watermark(lake_root, "traces") == final
    # Every kill that hit a commit in flight left data files no commit references; the lake ignores them.
    referenced = {Path(p).name for p in DeltaTable(table_path(lake_root, "spans")).file_uris()}
    on_disk = {p.name for p in (lake_root / "monitoring" / "spans").rglob("*.parquet")}
    assert referenced <= on_disk


def _mark(lake_root: Path) -> int | None:
    """The spans table's watermark (None before the table exists)."""
    try:
        return watermark(lake_root, "spans")
    except DeltaError:  # not created yet, or being created by the process under test
        return None
