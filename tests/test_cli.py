"""The real ``tracelake`` command: a server process that ingests and answers, refuses unsafe
binds, and ``db upgrade``."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.server.otlp_helpers import five_span_trace, protobuf_body, record

CLI = [sys.executable, "-m", "tracelake.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers={"content-type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def server_process(store_uri, tmp_path, request):
    port = _free_port()
    env = {**os.environ, "TRACELAKE_STORE": store_uri, "TRACELAKE_ARTIFACTS": str(tmp_path / "artifacts"),
           "TRACELAKE_LAKE": str(tmp_path / "lake"), **getattr(request, "param", {})}
    proc = subprocess.Popen([*CLI, "server", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"server did not start (exit {proc.poll()}):\n{out}")
            time.sleep(0.2)
    yield base, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_server_process_ingests_and_answers_search(server_process):
    base, _ = server_process
    spans = record(five_span_trace)
    status, _ = _post(f"{base}/v1/traces", protobuf_body(spans), "application/x-protobuf")
    assert status == 200
    body = json.dumps({"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}]})
    status, raw = _post(f"{base}/api/3.0/mlflow/traces/search", body.encode(), "application/json")
    assert status == 200
    assert [t["trace_id"] for t in json.loads(raw)["traces"]] == ["tr-" + format(spans[0].context.trace_id, "032x")]


def test_server_stops_cleanly_on_sigterm_keeping_acknowledged_traces(server_process, store_uri):
    base, proc = server_process
    for _ in range(3):
        assert _post(f"{base}/v1/traces", protobuf_body(record(five_span_trace)), "application/x-protobuf")[0] == 200
    os.killpg(proc.pid, signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reflects it
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    from tracelake.store.sql.store import SqlStore

    store = SqlStore(store_uri, artifact_root="/tmp/unused-artifacts")
    try:
        assert store.count_traces(["0"]) == 3
    finally:
        store.close()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


@pytest.mark.parametrize("server_process", [{"TRACELAKE_LAKE_SYNC_PROCESS": "true"}], indirect=True)
def test_server_syncs_the_lake_from_a_child_process_that_ends_with_it(server_process, tmp_path):
    """With lake_sync_process the lake sync runs in a child process (off the ingest path's
    interpreter lock); what the server ingests still lands in the lake within seconds."""
    base, proc = server_process
    spans = record(five_span_trace)
    assert _post(f"{base}/v1/traces", protobuf_body(spans), "application/x-protobuf")[0] == 200
    from tracelake.lake.storage import Lake
    from tracelake.lake.tables import SPANS

    lake = Lake.at(str(tmp_path / "lake"))
    deadline = time.monotonic() + 60
    while True:
        table = lake.open(SPANS)
        rows = table.to_pyarrow_table().num_rows if table is not None else 0
        if rows == len(spans) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert rows == len(spans)
    children = _children(proc.pid)
    assert children, "the lake sync runs in a child process of the server"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    for child in children:
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            with open(f"/proc/{child}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.2)
        if os.path.exists(f"/proc/{child}"):
            with open(f"/proc/{child}/stat") as fh:
                assert fh.read().rsplit(")", 1)[1].split()[0] == "Z", "the lake process outlived the server"


def test_non_loopback_bind_without_auth_is_refused(tmp_path):
    result = subprocess.run([*CLI, "server", "--host", "0.0.0.0", "--port", str(_free_port()),
                             "--store", f"sqlite:///{tmp_path}/t.db"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--insecure-no-auth" in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path):
    db = tmp_path / "fresh.db"
    result = subprocess.run([*CLI, "db", "upgrade", "--store", f"sqlite:///{db}"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "traces", "spans", "assessments", "rollups"} <= tables


def test_cli_without_arguments_shows_help():
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "server" in result.stdout
