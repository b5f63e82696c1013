"""Added cost per span of tracelake vs mlflow.trace vs the OpenTelemetry SDK, in the same run.

    python bench/sdk_overhead.py                 # 100,000 spans each (mlflow: --mlflow-n, default 10,000)
    python bench/sdk_overhead.py --unreachable   # + 1,000,000 spans with the server down: RSS stays bounded

A sink HTTP server (a separate process, so it does not compete for this process's GIL) listens on
127.0.0.1 and answers every POST with 200. Each SDK runs in its own child process (mlflow drives a
global OpenTelemetry provider, so sharing a process would skew both), traces ``noop(i)`` N times
with a live exporter to the sink, then flushes. Cost per span = (traced loop + flush - bare loop) / N.

- tracelake: ``@tracelake.trace`` (inputs and output captured), server exporter: the native batch
             (the sink answers 200 to it, as a tracelake server does), not gzip'd since the sink
             is on this machine (``export_compression=auto``; ``--gzip`` forces gzip, as for a
             remote server).
- mlflow:    ``@mlflow.trace`` (inputs and output captured), exporting OTLP/HTTP protobuf to the
             same sink (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; mlflow's own batch processor).
- otel:      ``tracer.start_as_current_span`` + ``BatchSpanProcessor`` + ``OTLPSpanExporter``
             (HTTP protobuf) to the sink; no input/output capture.
Queues are sized to hold all N spans so nobody wins by dropping; dropped counts are printed.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")


# -- the sink -------------------------------------------------------------------------------------
class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real collector
    # One write per response and no Nagle: otherwise delayed ACKs add 40 ms to every request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    counts: dict[str, int] = {"requests": 0, "bytes": 0}

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.counts["requests"] += 1
        self.counts["bytes"] += len(body)
        reply = b"{}" if "json" in (self.headers.get("Content-Type") or "") else b""
        self.send_response(200)
        self.send_header("Content-Type", self.headers.get("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:  # noqa: N802
        reply = json.dumps(self.counts).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def run_sink(port: int) -> None:
    http.server.ThreadingHTTPServer(("127.0.0.1", port), _Sink).serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one SDK in one child process ----------------------------------------------------------------
def noop(x: int) -> int:
    return x


def bare_loop(n: int) -> tuple[float, float]:
    f = noop
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        f(i)
    return time.perf_counter() - t0, time.process_time() - c0


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(sdk: str, n: int, sink: str) -> dict[str, float]:
    flush, traced, dropped = _setup(sdk, n, sink)
    for i in range(min(n, 2000)):  # warm up (imports, connection, caches)
        traced(i)
    flush()
    runs = [bare_loop(n) for _ in range(3)]
    bare, bare_cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        traced(i)
    t1 = time.perf_counter()
    flush()
    t2, c2 = time.perf_counter(), time.process_time()
    # process_time counts every thread of this process (app + export), not other processes:
    # on a shared machine it is the steadier measure of what tracing costs.
    return {"n": n, "bare_us": bare / n * 1e6, "call_site_us": (t1 - t0 - bare) / n * 1e6,
            "added_us": (t2 - t0 - bare) / n * 1e6, "added_cpu_us": (c2 - c0 - bare_cpu) / n * 1e6,
            "dropped": dropped(), "rss_mb": rss_mb()}


def _setup(sdk: str, n: int, sink: str):  # type: ignore[no-untyped-def]
    queue = n + 4096
    if sdk == "tracelake":
        sys.path.insert(0, SRC)
        import tracelake

        tracelake.configure(tracking_uri=sink, experiment_name="bench", max_queue_size=queue,
                            export_compression=os.environ.get("BENCH_COMPRESSION", "auto"))
        return (lambda: tracelake.flush(600), tracelake.trace(noop),
                lambda: tracelake.get_export_stats().dropped)
    if sdk == "mlflow":
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink + "/v1/traces"
        os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(queue)
        import mlflow
        from opentelemetry import trace as otel_trace

        def mlflow_flush() -> None:
            mlflow.flush_trace_async_logging()
            provider = otel_trace.get_tracer_provider()
            getattr(provider, "force_flush", lambda *a: None)(600_000)
            from mlflow.tracing.provider import provider as mlflow_provider
            mlflow_provider.get().force_flush(600_000)

        return mlflow_flush, mlflow.trace(noop), lambda: -1
    if sdk == "otel":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sink + "/v1/traces"),
                                                       max_queue_size=queue, max_export_batch_size=512))
        tracer = provider.get_tracer("bench")

        def otel_noop(x: int) -> int:
            with tracer.start_as_current_span("noop"):
                return noop(x)

        return lambda: provider.force_flush(600_000), otel_noop, lambda: -1
    raise SystemExit(f"unknown sdk {sdk}")


def unreachable(n: int) -> dict[str, float]:
    """Trace n spans with the server down: the queue bound keeps memory flat."""
    sys.path.insert(0, SRC)
    import tracelake

    tracelake.configure(tracking_uri=f"http://127.0.0.1:{free_port()}", max_queue_size=2048)
    traced = tracelake.trace(noop)
    before = rss_mb()
    peak = before
    for i in range(n):
        traced(i)
        if i % 100_000 == 0:
            peak = max(peak, rss_mb())
    stats = tracelake.get_export_stats()
    return {"n": n, "rss_before_mb": before, "rss_peak_mb": max(peak, rss_mb()), "queued": stats.queued,
            "dropped": stats.dropped, "failed": stats.failed}


def child(sdk: str, n: int, sink: str) -> dict[str, float]:
    return unreachable(n) if sdk == "unreachable" else measure(sdk, n, sink)


def spawn(sdk: str, n: int, sink: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", sdk, "--n", str(n), "--sink", sink],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="spans per SDK")
    parser.add_argument("--mlflow-n", type=int, default=10_000, help="spans for mlflow (it is slow)")
    parser.add_argument("--unreachable", action="store_true", help="also trace 1,000,000 spans, server down")
    parser.add_argument("--gzip", action="store_true", help="tracelake gzips its requests (as to a remote server)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.sink)))
        return

    if args.gzip:
        os.environ["BENCH_COMPRESSION"] = "gzip"  # read by the tracelake child
    port = free_port()
    sink_proc = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {HERE!r}); "
                                  f"import sdk_overhead; sdk_overhead.run_sink({port})"])
    sink = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(sink + "/stats", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; sink {sink} (separate process); "
              f"tracelake compression: {'gzip' if args.gzip else 'auto (none: the sink is local)'}")
        results = {"tracelake": spawn("tracelake", args.n, sink),
                   "otel": spawn("otel", args.n, sink),
                   "mlflow": spawn("mlflow", args.mlflow_n, sink)}
        sink_stats = json.loads(urllib.request.urlopen(sink + "/stats", timeout=5).read())
    finally:
        sink_proc.terminate()
        sink_proc.wait()
    print(f"\n{'sdk':<10} {'spans':>8} {'bare µs':>8} {'call-site µs':>13} {'wall µs/span':>13} "
          f"{'CPU µs/span':>12} {'dropped':>8} {'RSS MB':>7}")
    for name, r in results.items():
        dropped = "n/a" if r["dropped"] < 0 else str(int(r["dropped"]))
        print(f"{name:<10} {int(r['n']):>8} {r['bare_us']:>8.3f} {r['call_site_us']:>13.2f} "
              f"{r['added_us']:>13.2f} {r['added_cpu_us']:>12.2f} {dropped:>8} {r['rss_mb']:>7.1f}")
    print("\ncall-site: the traced loop alone; wall/CPU: loop + flush (every span exported), minus the bare loop")
    for key, label in (("added_us", "wall"), ("added_cpu_us", "CPU")):
        ours = results["tracelake"][key]
        ratios = ", ".join(f"{peer} {results[peer][key]:.2f} µs = {results[peer][key] / ours:.1f}x"
                           for peer in ("mlflow", "otel"))
        print(f"added {label:<4} per span: tracelake {ours:.2f} µs; {ratios}")
    print(f"sink received {sink_stats['requests']} requests, {sink_stats['bytes'] / 1e6:.1f} MB")
    if args.unreachable:
        r = spawn("unreachable", 1_000_000, sink)
        print(f"\nserver unreachable, {int(r['n']):,} spans: RSS {r['rss_before_mb']:.1f} MB -> peak "
              f"{r['rss_peak_mb']:.1f} MB; queued {int(r['queued'])}, dropped {int(r['dropped']):,}, "
              f"failed {int(r['failed'])}")


if __name__ == "__main__":
    main()
