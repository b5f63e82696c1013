"""Shared helpers for benchmarks: free ports, starting servers, RSS, percentiles."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up in {timeout}s")


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (empty when pgrep is missing)."""
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        return []
    return [int(p) for p in out]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (from /proc)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of a process plus its live children (e.g. tracelake's lake sync process)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:  # it ended meanwhile
            pass
    return total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def start_tracelake(workdir: str, port: int, store: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "TRACELAKE_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "tracelake.cli", "server", "--port", str(port),
           "--store", store or f"sqlite:///{workdir}/tracelake.db", "--artifacts", f"{workdir}/artifacts",
           "--lake", f"{workdir}/lake"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(f"{workdir}/tracelake.log", "w"),
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc


def start_mlflow(workdir: str, port: int) -> subprocess.Popen:
    mlflow = shutil.which("mlflow") or "mlflow"
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
           "--default-artifact-root", f"{workdir}/mlartifacts"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{workdir}/mlflow.log", "w"),
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
