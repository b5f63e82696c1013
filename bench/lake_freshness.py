"""Lake freshness: time from the ingest answer to the trace's row being visible in Delta.

A real ``tracelake server`` (SQLite store, lake in a local folder, in-server lake sync at its
default interval unless ``--sync-interval`` is given) receives OTLP traces of 5 spans at a
steady rate (default 500 traces/s). An observer polls the ``monitoring.traces`` Delta table
with ``deltalake`` + pyarrow (not tracelake's code), reads the ``trace_id`` column of each new
data file, and notes when each trace first becomes visible. Freshness = visible - answered.

    python bench/lake_freshness.py [--seconds 30] [--rate 500] [--traces-per-request 10]

The reference platform documents ~15 minutes for production-monitoring tables and 30-90
minutes for gateway inference tables; it cannot run here, so the ratio printed is against
that documented figure, not a measurement made in this run.
"""
from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import free_port, percentile, start_tracelake, stop  # noqa: E402
from ingest import build_requests  # noqa: E402

REFERENCE_S = 15 * 60  # documented production-monitoring delay of the reference platform


def trace_ids(body: bytes) -> list[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    msg = ExportTraceServiceRequest.FromString(body)
    return sorted({"tr-" + s.trace_id.hex() for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans})


class Sender:
    """Sends request i at t0 + i / request_rate (a few threads keep the schedule)."""

    def __init__(self, port: int, bodies: list[bytes], request_rate: float, threads: int = 8) -> None:
        self.port, self.bodies, self.rate, self.threads = port, bodies, request_rate, threads
        self.acked: dict[int, float] = {}  # request index -> wall time of the 200
        self.failed = 0
        self._next = 0
        self._lock = threading.Lock()
        self.t0 = 0.0

    def _worker(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"content-type": "application/x-protobuf"}
        while True:
            with self._lock:
                i = self._next
                self._next += 1
            if i >= len(self.bodies):
                break
            delay = self.t0 + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.request("POST", "/v1/traces", body=self.bodies[i], headers=headers)
            resp = conn.getresponse()
            resp.read()
            with self._lock:
                if resp.status == 200:
                    self.acked[i] = time.time()
                else:
                    self.failed += 1
        conn.close()

    def run(self) -> float:
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self._worker) for _ in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - self.t0


class Observer:
    """Polls the traces table; records when each trace id first appears."""

    def __init__(self, path: str, poll_s: float = 0.05) -> None:
        self.path, self.poll_s = path, poll_s
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self._files: set[str] = set()

    def run(self) -> None:
        import pyarrow.parquet as pq
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        version = -1
        while not self.stop.is_set():
            try:
                table = DeltaTable(self.path)
            except TableNotFoundError:
                time.sleep(self.poll_s)
                continue
            if table.version() != version:
                version = table.version()
                now = time.time()
                for uri in set(table.file_uris()) - self._files:
                    self._files.add(uri)
                    for tid in pq.read_table(uri, columns=["trace_id"]).column(0).to_pylist():
                        self.seen.setdefault(tid, now)
            time.sleep(self.poll_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=500.0, help="traces per second")
    parser.add_argument("--traces-per-request", type=int, default=10)
    parser.add_argument("--sync-interval", type=float, default=None,
                        help="lake sync interval inside the server (default: the server's default)")
    args = parser.parse_args()
    n_requests = int(args.seconds * args.rate / args.traces_per_request)
    print(f"building {n_requests} OTLP requests of {args.traces_per_request} traces (5 spans each) ...")
    bodies = build_requests(n_requests, args.traces_per_request)
    ids = [trace_ids(b) for b in bodies]
    with tempfile.TemporaryDirectory(prefix="tracelake-freshness.") as work:
        if args.sync_interval is not None:
            os.environ["TRACELAKE_LAKE_SYNC_INTERVAL_S"] = str(args.sync_interval)
        os.environ["TRACELAKE_LAKE"] = f"{work}/lake"
        port = free_port()
        server = start_tracelake(work, port)
        observer = Observer(f"{work}/lake/monitoring/traces")
        watcher = threading.Thread(target=observer.run, daemon=True)
        watcher.start()
        try:
            sender = Sender(port, bodies, args.rate / args.traces_per_request)
            elapsed = sender.run()
            expected = {tid for i in sender.acked for tid in ids[i]}
            deadline = time.monotonic() + 120
            while not expected <= set(observer.seen) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            observer.stop.set()
            watcher.join(timeout=10)
            stop(server)
    fresh = [observer.seen[tid] - sender.acked[i] for i in sender.acked for tid in ids[i] if tid in observer.seen]
    acked_traces = sum(len(ids[i]) for i in sender.acked)
    p50, p95, p99 = (percentile(fresh, q) for q in (50, 95, 99))
    print(f"ingest: {acked_traces} traces acknowledged in {elapsed:.1f} s = {acked_traces / elapsed:.0f} traces/s "
          f"(target {args.rate:.0f}); {sender.failed} requests failed")
    print(f"lake: {len(fresh)} of {acked_traces} traces visible in Delta; {acked_traces - len(fresh)} missing")
    print(f"freshness (ingest answer -> row visible in Delta): p50 {p50:.2f} s   p95 {p95:.2f} s   "
          f"p99 {p99:.2f} s   max {max(fresh) if fresh else float('nan'):.2f} s   (target p95 < 10 s)")
    print(f"reference platform (documented, not measured here): ~{REFERENCE_S / 60:.0f} min -> "
          f"tracelake p95 is {REFERENCE_S / p95:.0f}x fresher")


if __name__ == "__main__":
    main()
