"""Query latency at scale: tracelake with N traces (default 1,000,000) vs the MLflow server
at the largest size it reaches in the same loading time budget.

Reports p50/p95 of filtered, sorted first pages (100 traces) and of getting a
10,000-span trace, plus server RSS.

    python bench/query.py [--traces 1000000] [--repeat 30] [--skip-mlflow]
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
from _common import free_port, percentile, rss_mb, start_mlflow, start_tracelake, stop  # noqa: E402
from ingest import Load, create_experiment  # noqa: E402

QUERIES = [
    ("newest page", None),
    ("errors only", "attributes.status = 'ERROR'"),
    ("by tag", "tags.env = 'prod'"),
    ("slow", "attributes.execution_time_ms > 500"),
    ("span type", "span.type = 'TOOL'"),
]


def build_varied_requests(n_requests: int, tpr: int) -> list[bytes]:
    """Like the ingest bench, with a share of errors, tags and durations to filter on."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    base = time.time_ns() - 30 * 86_400 * 10**9
    bodies = []
    for r in range(n_requests):
        exporter.clear()
        for t in range(tpr):
            i = r * tpr + t
            start = base + i * 2_000_000
            duration = (i % 1000) * 1_000_000  # 0..999 ms
            root_attrs = {"mlflow.spanType": '"AGENT"', "mlflow.spanInputs": json.dumps({"q": f"question {i}"}),
                          "mlflow.spanOutputs": json.dumps(f"answer {i}"),
                          "tracelake.trace.tags": json.dumps({"env": "prod" if i % 10 == 0 else "dev"})}
            root = tracer.start_span("agent", attributes=root_attrs, start_time=start)
            ctx = __import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(root)
            for k, kind in enumerate(("RETRIEVER", "LLM", "TOOL", "PARSER")):
                child = tracer.start_span(kind.lower(), context=ctx, start_time=start + k * 1000,
                                          attributes={"mlflow.spanType": json.dumps(kind)})
                child.end(end_time=start + k * 1000 + 500)
            if i % 20 == 0:
                root.set_status(Status(StatusCode.ERROR, "failed"))
            root.end(end_time=start + duration)
        bodies.append(encode_spans(exporter.get_finished_spans()).SerializeToString())
    provider.shutdown()
    return bodies


def big_trace_body(n_spans: int) -> tuple[bytes, str]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    with tracer.start_as_current_span("big-root", attributes={"mlflow.spanType": '"AGENT"'}) as root:
        trace_id = "tr-" + format(root.get_span_context().trace_id, "032x")
        for i in range(n_spans - 1):
            with tracer.start_as_current_span(f"step-{i}", attributes={
                    "mlflow.spanType": '"TOOL"', "mlflow.spanInputs": json.dumps({"i": i}),
                    "mlflow.spanOutputs": json.dumps({"ok": True})}):
                pass
    body = encode_spans(exporter.get_finished_spans()).SerializeToString()
    provider.shutdown()
    return body, trace_id


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"content-type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"{method} {path} -> {resp.status}: {data[:300]!r}")
    return dt, json.loads(data)


def query_latencies(port: int, experiment_id: str, repeat: int, big_trace_id: str | None) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    out = {}
    for label, flt in QUERIES:
        times = []
        for _ in range(repeat):
            body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}],
                    "max_results": 100, "order_by": ["timestamp_ms DESC"]}
            if flt:
                body["filter"] = flt
            dt, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", body)
            times.append(dt)
        out[label] = {"p50_ms": round(percentile(times, 50) * 1000, 1), "p95_ms": round(percentile(times, 95) * 1000, 1),
                      "rows": len(page.get("traces", []))}
    if big_trace_id:
        times = []
        for _ in range(max(5, repeat // 3)):
            dt, got = timed(conn, "GET", f"/api/3.0/mlflow/traces/get?trace_id={big_trace_id}")
            times.append(dt)
        out["get 10k-span trace"] = {"p50_ms": round(percentile(times, 50) * 1000, 1),
                                     "p95_ms": round(percentile(times, 95) * 1000, 1),
                                     "rows": len(got["trace"]["spans"])}
    return out


def load(port: int, experiment_id: str, bodies: list[bytes], seconds: float) -> tuple[int, float]:
    headers = {"content-type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id,
               "x-tracelake-experiment-id": experiment_id}
    runner = Load(port, headers, bodies, seconds, concurrency=4)
    elapsed = runner.run()
    return runner.ok, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=1_000_000)
    ap.add_argument("--traces-per-request", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--big-trace-spans", type=int, default=10_000)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    tpr = args.traces_per_request
    n_requests = args.traces // tpr
    print(f"building {n_requests} requests of {tpr} traces ...", flush=True)
    bodies = build_varied_requests(n_requests, tpr)
    big_body, _ = big_trace_body(args.big_trace_spans)
    with tempfile.TemporaryDirectory(prefix="bench-query-") as work:
        port = free_port()
        proc = start_tracelake(work, port)
        peak = [0.0]
        done = threading.Event()
        threading.Thread(target=lambda: [peak.__setitem__(0, max(peak[0], rss_mb(proc.pid)))
                                         for _ in iter(lambda: done.wait(1.0), True)], daemon=True).start()
        try:
            exp = create_experiment(port, "bench-query")
            ok, load_s = load(port, exp, bodies, seconds=3600)
            print(f"tracelake loaded {ok * tpr} traces in {load_s:.0f} s", flush=True)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("POST", "/v1/traces", body=big_body, headers={"content-type": "application/x-protobuf",
                                                                       "x-tracelake-experiment-id": exp})
            conn.getresponse().read()
            _, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", {
                "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}],
                "filter": "trace.name = 'big-root'", "max_results": 1})
            big_id = page["traces"][0]["trace_id"]
            tl = query_latencies(port, exp, args.repeat, big_id)
            tl_traces = ok * tpr
        finally:
            done.set()
            stop(proc)
        print(f"tracelake @ {tl_traces} traces, peak RSS {peak[0]:.0f} MB:")
        for k, v in tl.items():
            print(f"  {k:22s} p50 {v['p50_ms']:8.1f} ms  p95 {v['p95_ms']:8.1f} ms  ({v['rows']} rows)")
        if args.skip_mlflow:
            return
        port = free_port()
        proc = start_mlflow(work, port)
        try:
            exp = create_experiment(port, "bench-query")
            ok, _ = load(port, exp, bodies, seconds=load_s)
            ml_traces = ok * tpr
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("POST", "/v1/traces", body=big_body, headers={"content-type": "application/x-protobuf",
                                                                       "x-mlflow-experiment-id": exp})
            conn.getresponse().read()
            _, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", {
                "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}],
                "filter": "trace.name = 'big-root'", "max_results": 1})
            ml_big = page["traces"][0]["trace_id"] if page.get("traces") else None
            try:
                ml = query_latencies(port, exp, args.repeat, ml_big)
            except RuntimeError as exc:  # a filter MLflow does not support
                print(f"mlflow query failed: {exc}")
                ml = {}
        finally:
            stop(proc)
        print(f"mlflow @ {ml_traces} traces (same {load_s:.0f} s loading budget):")
        for k, v in ml.items():
            ratio = v["p95_ms"] / tl[k]["p95_ms"] if k in tl and tl[k]["p95_ms"] else float("nan")
            print(f"  {k:22s} p50 {v['p50_ms']:8.1f} ms  p95 {v['p95_ms']:8.1f} ms  ({v['rows']} rows)  "
                  f"tracelake p95 is {ratio:.1f}x faster with {tl_traces / max(ml_traces, 1):.0f}x the data")


if __name__ == "__main__":
    main()
