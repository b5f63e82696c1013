"""Query latency at scale: tracelake with N traces (default 1,000,000) vs the MLflow server
at the largest size it reaches in a loading time budget.

Reports p50/p95 of filtered, sorted first pages (100 traces) and of getting a
10,000-span trace, plus server RSS (peak, sampled every second while it runs).

Loading: ``--load store`` (default) writes the N traces in process through the store's
``write_spans``, in transactions of 5,000 traces: 1,000 traces are recorded with the
OpenTelemetry SDK and decoded by the server's own OTLP pipeline (``decode_request``), then
copied with fresh trace ids and later timestamps, so the rows are what ``/v1/traces`` would
have stored. ``--load http`` sends every trace over ``/v1/traces`` instead (slow at 1M).
Either way the big trace goes through ``/v1/traces`` and every query is measured over HTTP
against the real server process. MLflow is always loaded over HTTP, for ``--mlflow-seconds``.

The server syncs every stored trace to its Delta lake in the background. Traces that arrive
over HTTP are synced as they come; traces written in process are all still to sync when the
server starts (about 25 min of background work at 1M). ``--lake-sync wait`` (default) measures
once the sync has caught up, the steady state; ``--lake-sync off`` runs the server with
``TRACELAKE_LAKE_SYNC_INTERVAL_S=0`` instead and says so in the output.

    python bench/query.py [--traces 1000000] [--load store|http] [--keep DIR] [--repeat 30]
                          [--lake-sync wait|off] [--skip-mlflow] [--mlflow-seconds 300]
"""
from __future__ import annotations

import argparse
import dataclasses
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


PERIOD = 1000  # the varied traces repeat after this many (durations cycle through 0..999 ms)
STEP_NS = 2_000_000  # trace i starts at base + i * STEP_NS


def build_varied_requests(n_requests: int, tpr: int) -> list[bytes]:
    """Like the ingest bench, with a share of errors, tags and durations to filter on.

    Trace ``i``: 5 spans (AGENT root; RETRIEVER, LLM, TOOL, PARSER),
    ``i`` ms % 1000 long, ERROR when ``i % 20 == 0``, tag env=prod when ``i % 10 == 0``."""
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
            start = base + i * STEP_NS
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
        body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}],
                "max_results": 100, "order_by": ["timestamp_ms DESC"]}
        if flt:
            body["filter"] = flt
        timed(conn, "POST", "/api/3.0/mlflow/traces/search", body)  # one warm-up, not counted
        times = []
        for _ in range(repeat):
            dt, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", body)
            times.append(dt)
        out[label] = {"p50_ms": round(percentile(times, 50) * 1000, 1), "p95_ms": round(percentile(times, 95) * 1000, 1),
                      "rows": len(page.get("traces", []))}
    if big_trace_id:
        timed(conn, "GET", f"/api/3.0/mlflow/traces/get?trace_id={big_trace_id}")  # warm-up
        times = []
        for _ in range(max(10, repeat // 2)):
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


def load_in_store(uri: str, artifacts: str, n_traces: int, batch_traces: int = 5000) -> tuple[str, float]:
    """``n_traces`` varied traces written through ``SqlStore.write_spans`` (see the module notes);
    returns the experiment id and the seconds it took."""
    from tracelake.ingest.pipeline import decode_request
    from tracelake.store.base import SpanBatch, TraceUpdate
    from tracelake.store.sql.store import SqlStore

    store = SqlStore(uri, artifacts)
    experiment_id = store.create_experiment("bench-query")
    templates: list[tuple[list, TraceUpdate | None]] = []  # PERIOD traces: (spans, trace update)
    for body in build_varied_requests(2, PERIOD // 2):
        decoded = decode_request(body, "application/x-protobuf", None, max_bytes=1 << 30,
                                 default_experiment_id=None, header_experiment_id=experiment_id)
        for batch in decoded.batches:
            updates = {u.trace_id: u for u in batch.traces}
            by_trace: dict[str, list] = {}
            for span in batch.spans:
                by_trace.setdefault(span.trace_id, []).append(span)
            templates += [(spans, updates.get("tr-" + hex_id)) for hex_id, spans in by_trace.items()]
    started = time.perf_counter()
    spans: list = []
    updates: list = []
    for i in range(n_traces):
        copy, j = divmod(i, PERIOD)
        template, update = templates[j]
        shift = copy * PERIOD * STEP_NS
        hex_id = f"{copy:08x}" + template[0].trace_id[8:]  # fresh: the copy number, then the template id
        spans += [dataclasses.replace(s, trace_id=hex_id, start_time_ns=s.start_time_ns + shift,
                                      end_time_ns=s.end_time_ns + shift) for s in template]
        if update is not None:
            updates.append(dataclasses.replace(update, trace_id="tr-" + hex_id))
        if (i + 1) % batch_traces == 0 or i + 1 == n_traces:
            store.write_spans([SpanBatch(experiment_id, spans, updates)])
            spans, updates = [], []
            if (i + 1) % 100_000 == 0:
                print(f"  … {i + 1:,} traces ({time.perf_counter() - started:.0f} s)", flush=True)
    store.close()
    return experiment_id, time.perf_counter() - started


def post_big_trace(port: int, experiment_id: str, body: bytes) -> str | None:
    """Send the big trace over ``/v1/traces`` and find its id by name."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/traces", body=body, headers={"content-type": "application/x-protobuf",
                                                           "x-tracelake-experiment-id": experiment_id,
                                                           "x-mlflow-experiment-id": experiment_id})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise RuntimeError(f"big trace -> {resp.status}")
    location = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}]
    _, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", {
        "locations": location, "filter": "trace.name = 'big-root'", "max_results": 1})
    if not page.get("traces"):  # the newest trace: the others started 30 days ago
        _, page = timed(conn, "POST", "/api/3.0/mlflow/traces/search", {
            "locations": location, "order_by": ["timestamp_ms DESC"], "max_results": 1})
    return page["traces"][0]["trace_id"] if page.get("traces") else None


def wait_for_lake(port: int, timeout_s: float = 3600) -> float:
    """Seconds until the server's lake sync has caught up with the store (a server whose traces
    arrived over time is in that state); loading in process leaves it all to do at start."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)  # idle ones are closed after 5 s
        _, found = timed(conn, "GET", "/api/tracelake/lake/tables")
        conn.close()
        synced = [t for t in found["tables"] if t.get("synced_through_seq") is not None]
        if len(synced) >= 2 and all(t["synced_through_seq"] >= t["store_seq"] for t in synced):
            return time.perf_counter() - started
        time.sleep(5)
    raise RuntimeError(f"the lake sync did not catch up in {timeout_s:.0f} s")


class PeakRss:
    """Samples a server's RSS every second while it runs."""

    def __init__(self, pid: int) -> None:
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def _run(self, pid: int) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(pid))
            if self._done.wait(1.0):
                return

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def report(title: str, results: dict) -> None:
    print(title)
    for k, v in results.items():
        print(f"  {k:22s} p50 {v['p50_ms']:8.1f} ms  p95 {v['p95_ms']:8.1f} ms  ({v['rows']} rows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=1_000_000)
    ap.add_argument("--load", choices=("store", "http"), default="store",
                    help="how tracelake's N traces are written (queries always go over HTTP)")
    ap.add_argument("--keep", help="keep the tracelake data in this folder and reuse it when it holds N traces")
    ap.add_argument("--traces-per-request", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--big-trace-spans", type=int, default=10_000)
    ap.add_argument("--lake-sync", choices=("wait", "off"), default="wait",
                    help="measure after the server's lake sync caught up, or run the server without it")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--mlflow-seconds", type=float, default=300,
                    help="MLflow's loading budget over HTTP (with --load http: tracelake's loading time)")
    args = ap.parse_args()
    tpr = args.traces_per_request
    big_body, _ = big_trace_body(args.big_trace_spans)
    work = args.keep or tempfile.mkdtemp(prefix="bench-query-")
    os.makedirs(work, exist_ok=True)
    uri, artifacts = f"sqlite:///{work}/tracelake.db", f"{work}/artifacts"
    marker = os.path.join(work, "bench-query.json")
    kept = json.load(open(marker)) if os.path.exists(marker) else None
    if kept and kept["traces"] != args.traces:
        raise SystemExit(f"{work} holds {kept['traces']:,} traces, not {args.traces:,}: use another --keep folder")
    if kept:
        exp, how = kept["experiment_id"], f"reused {work} ({kept['how']})"
        load_s = kept["load_s"]
    elif args.load == "store":
        print(f"writing {args.traces:,} traces through the store in process ...", flush=True)
        exp, load_s = load_in_store(uri, artifacts, args.traces)
        how = f"written in process through SqlStore.write_spans in {load_s:.0f} s"
    else:
        how = None
    port = free_port()
    if args.lake_sync == "off":
        os.environ["TRACELAKE_LAKE_SYNC_INTERVAL_S"] = "0"  # read by the tracelake server only
    proc = start_tracelake(work, port, uri)
    rss = PeakRss(proc.pid)
    try:
        if how is None:
            n_requests = args.traces // tpr
            print(f"building {n_requests} requests of {tpr} traces ...", flush=True)
            bodies = build_varied_requests(n_requests, tpr)
            exp = create_experiment(port, "bench-query")
            ok, load_s = load(port, exp, bodies, seconds=3600)
            del bodies
            how = f"sent over /v1/traces ({ok * tpr:,} acknowledged) in {load_s:.0f} s"
        if kept and kept.get("big_trace_id"):
            big_id = kept["big_trace_id"]
        else:
            big_id = post_big_trace(port, exp, big_body)
            with open(marker, "w") as fh:
                json.dump({"experiment_id": exp, "traces": args.traces, "how": how, "load_s": load_s,
                           "big_trace_id": big_id}, fh)
        print(f"tracelake: {args.traces:,} traces {how}; queries over HTTP", flush=True)
        if args.lake_sync == "wait":
            lake_s = wait_for_lake(port)
            catch_up_peak = rss.stop()
            print(f"  lake sync caught up {lake_s:.0f} s after the server started "
                  f"(server peak RSS until then {catch_up_peak:.0f} MB)", flush=True)
            rss = PeakRss(proc.pid)
        else:
            print("  server runs with the lake sync off (TRACELAKE_LAKE_SYNC_INTERVAL_S=0)", flush=True)
        tl = query_latencies(port, exp, args.repeat, big_id)
    finally:
        peak = rss.stop()
        stop(proc)
    report(f"tracelake @ {args.traces:,} traces, server peak RSS during the queries {peak:.0f} MB:", tl)
    if args.skip_mlflow:
        return
    budget = load_s if args.load == "http" else args.mlflow_seconds
    n_requests = max(1, min(args.traces // tpr, int(budget * 100 // tpr) + 1))  # MLflow: well under 100 traces/s
    bodies = build_varied_requests(n_requests, tpr)
    ml_work = tempfile.mkdtemp(prefix="bench-query-mlflow-")
    port = free_port()
    proc = start_mlflow(ml_work, port)
    rss = PeakRss(proc.pid)
    try:
        exp = create_experiment(port, "bench-query")
        ok, _ = load(port, exp, bodies, seconds=budget)
        ml_traces = ok * tpr
        ml_big = post_big_trace(port, exp, big_body)
        try:
            ml = query_latencies(port, exp, args.repeat, ml_big)
        except RuntimeError as exc:  # a filter MLflow does not support
            print(f"mlflow query failed: {exc}")
            ml = {}
    finally:
        ml_peak = rss.stop()
        stop(proc)
    print(f"mlflow @ {ml_traces:,} traces (loaded over HTTP for {budget:.0f} s), server peak RSS {ml_peak:.0f} MB:")
    for k, v in ml.items():
        line = f"  {k:22s} p50 {v['p50_ms']:8.1f} ms  p95 {v['p95_ms']:8.1f} ms  ({v['rows']} rows)  "
        if k not in tl or tl[k]["rows"] != v["rows"]:
            line += "not comparable: tracelake found another number of rows"
        else:
            line += (f"tracelake p95 is {v['p95_ms'] / tl[k]['p95_ms']:.1f}x faster with "
                     f"{args.traces / max(ml_traces, 1):.0f}x the data")
        print(line)


if __name__ == "__main__":
    main()
