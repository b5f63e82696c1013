"""Ingest throughput: tracelake vs the MLflow tracking server, same OTLP load, one run.

Traces of 5 spans (~500 bytes of inputs/outputs each) are built BEFOREHAND with the real
OpenTelemetry SDK and encoded by its own OTLP protobuf encoder, grouped into requests the
way a BatchSpanProcessor would send them. A light load generator (threads + keep-alive
http.client, no encoding work) sends them for a fixed time to each server; we report
traces/s, spans/s, answer latency p50/p99, the ratio, server RSS, and check afterwards
that every acknowledged trace is stored (durable answers).

    python bench/ingest.py [--seconds 20] [--traces-per-request 50] [--concurrency 16]

Concurrency: a server that answers only after committing is latency-bound with few
clients (throughput = clients x traces per request / answer time), so the default is 16
clients, as from a fleet of app instances; the load generator prints its own CPU use so
you can see it is not the bottleneck.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import free_port, percentile, rss_mb, start_mlflow, start_tracelake, stop, tree_cpu_seconds  # noqa: E402


def build_requests(n_requests: int, traces_per_request: int, template_requests: int = 20) -> list[bytes]:
    """``n_requests`` distinct OTLP bodies. A few templates are recorded with the real OTel
    SDK and encoded by its encoder; the rest are copies with fresh trace ids (and fresh span
    ids), so every request carries new traces and none is a re-send."""
    import random

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    filler = "lorem ipsum dolor sit amet " * 9  # ~250 bytes, twice per span

    def attrs(kind: str, i: int) -> dict[str, str]:
        return {"mlflow.spanType": json.dumps(kind),
                "mlflow.spanInputs": json.dumps({"question": f"q{i} {filler}"}),
                "mlflow.spanOutputs": json.dumps({"answer": f"a{i} {filler}"})}

    templates = []
    for r in range(min(template_requests, n_requests)):
        exporter.clear()
        for t in range(traces_per_request):
            i = r * traces_per_request + t
            with tracer.start_as_current_span("agent", attributes=attrs("AGENT", i)):
                with tracer.start_as_current_span("retrieve", attributes=attrs("RETRIEVER", i)):
                    pass
                with tracer.start_as_current_span("llm", attributes={
                        **attrs("LLM", i), "mlflow.chat.tokenUsage": json.dumps(
                            {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120})}):
                    pass
                with tracer.start_as_current_span("tool", attributes=attrs("TOOL", i)):
                    with tracer.start_as_current_span("format", attributes=attrs("PARSER", i)):
                        pass
        templates.append(encode_spans(exporter.get_finished_spans()))
    provider.shutdown()
    rng = random.Random(7)
    bodies = []
    for r in range(n_requests):
        msg = ExportTraceServiceRequest()
        msg.CopyFrom(templates[r % len(templates)])
        new_trace: dict[bytes, bytes] = {}
        new_span: dict[bytes, bytes] = {}
        for rs in msg.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.trace_id = new_trace.setdefault(span.trace_id, rng.randbytes(16))
                    span.span_id = new_span.setdefault(span.span_id, rng.randbytes(8))
                    if span.parent_span_id:
                        span.parent_span_id = new_span.setdefault(span.parent_span_id, rng.randbytes(8))
        bodies.append(msg.SerializeToString())
    return bodies


class Load:
    def __init__(self, port: int, headers: dict[str, str], bodies: list[bytes], seconds: float, concurrency: int):
        self.port, self.headers, self.bodies = port, headers, bodies
        self.seconds, self.concurrency = seconds, concurrency
        self.latencies: list[float] = []
        self.ok = 0
        self.failed: dict[int, int] = {}
        self._next = 0
        self._lock = threading.Lock()

    def _take(self) -> bytes | None:
        with self._lock:
            if self._next >= len(self.bodies):
                return None
            body = self.bodies[self._next]
            self._next += 1
            return body

    def _worker(self, deadline: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while time.monotonic() < deadline:
            body = self._take()
            if body is None:
                return
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/traces", body=body, headers=self.headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except OSError:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            dt = time.perf_counter() - t0
            with self._lock:
                if status == 200:
                    self.ok += 1
                    self.latencies.append(dt)
                else:
                    self.failed[status] = self.failed.get(status, 0) + 1
        conn.close()

    def run(self) -> float:
        deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self._worker, args=(deadline,)) for _ in range(self.concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0


def count_traces(port: int, experiment_id: str) -> int:
    """Count stored traces through the MLflow search API (works on both servers)."""
    total, token = 0, None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    while True:
        body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}],
                "max_results": 500}
        if token:
            body["page_token"] = token
        conn.request("POST", "/api/3.0/mlflow/traces/search", body=json.dumps(body),
                     headers={"content-type": "application/json"})
        page = json.loads(conn.getresponse().read() or b"{}")
        total += len(page.get("traces", []))
        token = page.get("next_page_token")
        if not token:
            return total


def lake_rows(lake_root: str, table: str = "monitoring/spans") -> int:
    """Rows in a Delta table of the lake, read with deltalake (not tracelake's code)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        actions = DeltaTable(os.path.join(lake_root, table)).get_add_actions(flatten=True)
    except TableNotFoundError:
        return 0
    return int(sum(n or 0 for n in actions.column("num_records").to_pylist()))


def lake_catch_up(lake_root: str, spans: int, timeout_s: float = 600.0) -> dict:
    """After the load: how many acked spans the lake did not have yet when the load ended,
    and how long it took to land them all (the lake sync runs at a lower priority than
    ingest: under a burst that takes both cores it falls behind, then catches up)."""
    t0 = time.perf_counter()
    behind = spans - lake_rows(lake_root)
    while time.perf_counter() - t0 < timeout_s:
        if lake_rows(lake_root) >= spans:
            return {"lake_spans_behind_at_end": behind, "lake_caught_up_s": round(time.perf_counter() - t0, 1)}
        time.sleep(0.5)
    return {"lake_spans_behind_at_end": behind, "lake_caught_up_s": None}


def create_experiment(port: int, name: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/2.0/mlflow/experiments/create", body=json.dumps({"name": name}),
                 headers={"content-type": "application/json"})
    return json.loads(conn.getresponse().read())["experiment_id"]


def measure(name: str, port: int, pid: int, bodies: list[bytes], args, tpr: int, lake_root: str | None = None) -> dict:
    experiment_id = create_experiment(port, f"bench-{int(time.time())}")
    headers = {"content-type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id,
               "x-tracelake-experiment-id": experiment_id}
    load = Load(port, headers, bodies, args.seconds, args.concurrency)
    peak = [0.0]
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.5):
            peak[0] = max(peak[0], rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, client0 = tree_cpu_seconds(pid), time.process_time()
    elapsed = load.run()
    cpu, client_cpu = tree_cpu_seconds(pid) - cpu0, time.process_time() - client0
    lake = lake_catch_up(lake_root, load.ok * tpr * 5) if lake_root else None
    stop_sampling.set()
    time.sleep(1.0)  # servers that answer before storing get a moment to catch up
    stored = count_traces(port, experiment_id)
    acked = load.ok * tpr
    res = {
        "server": name, "requests_ok": load.ok, "failed": load.failed, "seconds": round(elapsed, 2),
        "traces_per_s": round(acked / elapsed, 1), "spans_per_s": round(acked * 5 / elapsed, 1),
        "p50_ms": round(percentile(load.latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(load.latencies, 99) * 1000, 1),
        "acked_traces": acked, "stored_traces": stored, "peak_rss_mb": round(peak[0], 1),
        # Server CPU per stored span: steadier than traces/s on a shared machine.
        "server_cpu_us_per_span": round(cpu / max(acked * 5, 1) * 1e6, 1),
        "server_cores": round(cpu / elapsed, 2), "load_generator_cores": round(client_cpu / elapsed, 2),
    }
    if lake is not None:
        res.update(lake)
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--traces-per-request", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    tpr = args.traces_per_request
    n_requests = int(args.seconds * 12_000 / tpr) + 10  # enough for 12k traces/s
    print(f"building {n_requests} OTLP requests of {tpr} traces x 5 spans ...", flush=True)
    bodies = build_requests(n_requests, tpr)
    print(f"request size ~{len(bodies[0]) // 1024} KiB", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as work:
        port = free_port()
        proc = start_tracelake(work, port)
        try:
            idle = rss_mb(proc.pid)
            results["tracelake"] = measure("tracelake", port, proc.pid, bodies, args, tpr, os.path.join(work, "lake"))
            results["tracelake"]["idle_rss_mb"] = round(idle, 1)
        finally:
            stop(proc)
        if not args.skip_mlflow:
            port = free_port()
            proc = start_mlflow(work, port)
            try:
                idle = rss_mb(proc.pid)
                results["mlflow"] = measure("mlflow", port, proc.pid, bodies, args, tpr)
                results["mlflow"]["idle_rss_mb"] = round(idle, 1)
            finally:
                stop(proc)
    t = results["tracelake"]
    print(f"\ntracelake: {t['traces_per_s']:.0f} traces/s ({t['spans_per_s']:.0f} spans/s), "
          f"p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms, stored {t['stored_traces']}/{t['acked_traces']} acked, "
          f"peak RSS {t['peak_rss_mb']} MB, server CPU {t['server_cpu_us_per_span']} µs/span "
          f"({t['server_cores']} cores; load generator {t['load_generator_cores']} cores)")
    print(f"lake sync: {t['lake_spans_behind_at_end']} acked spans not in the lake yet when the load ended, "
          f"all there {t['lake_caught_up_s']} s later (the peak RSS above includes this catch-up)")
    if "mlflow" in results:
        m = results["mlflow"]
        print(f"mlflow:    {m['traces_per_s']:.0f} traces/s ({m['spans_per_s']:.0f} spans/s), "
              f"p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, stored {m['stored_traces']}/{m['acked_traces']} acked, "
              f"peak RSS {m['peak_rss_mb']} MB")
        if m["traces_per_s"] > 0:
            print(f"ratio tracelake/mlflow: {t['traces_per_s'] / m['traces_per_s']:.1f}x traces/s")


if __name__ == "__main__":
    main()
