"""Web UI speed: time until a 10,000-span trace is interactive in headless Chromium, and the
server time of the traces page with N traces in the experiment (default 1,000,000).

Targets (the issue): the big trace interactive in < 1 s, the traces page served in < 300 ms.
No peer UI runs offline here, so figures are printed as ratios against those targets.

The N traces are written straight through the store's ``write_spans`` (group commits of
5,000 traces) for speed; the big trace goes through ``/v1/traces`` like any app's.

    python bench/ui_trace.py [--traces 1000000] [--spans 10000] [--repeat 20] [--keep DIR]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _common import free_port, percentile, start_tracelake, stop

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def load_traces(uri: str, artifacts: str, n: int, batch: int = 5000) -> str:
    """``n`` one-span traces over the last 30 days in a new experiment; returns its id."""
    from tracelake.entities import Span
    from tracelake.store.base import SpanBatch, TraceUpdate
    from tracelake.store.sql.store import SqlStore

    store = SqlStore(uri, artifacts)
    eid = store.create_experiment("ui-bench")
    now_ns = time.time_ns()
    step = 30 * 86_400 * 10**9 // max(n, 1)
    started = time.perf_counter()
    for first in range(0, n, batch):
        spans, updates = [], []
        for i in range(first, min(n, first + batch)):
            hex_id = f"{i:032x}"
            start = now_ns - (n - i) * step
            spans.append(Span(
                trace_id=hex_id, span_id=f"{i:016x}", parent_span_id=None, name="agent",
                start_time_ns=start, end_time_ns=start + (i % 997) * 1_000_000,
                status_code="ERROR" if i % 20 == 0 else "OK", span_type="AGENT",
                inputs=json.dumps({"question": f"question {i}"}), outputs=json.dumps(f"answer {i}"),
                input_tokens=100, output_tokens=20))
            if i % 10 == 0:
                updates.append(TraceUpdate("tr-" + hex_id, eid, tags={"env": "prod"},
                                           metadata={"mlflow.trace.session": f"s-{i // 40}"}))
        store.write_spans([SpanBatch(eid, spans, updates)])
        if first and first % 200_000 == 0:
            print(f"  … {first:,} traces ({time.perf_counter() - started:.0f} s)", flush=True)
    store.close()
    print(f"  loaded {n:,} traces in {time.perf_counter() - started:.1f} s")
    return eid


def big_trace_body(spans: int) -> bytes:
    from tests.ui.tracegen import big_trace

    return big_trace(spans)


def timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int, int]:
    t = time.perf_counter()
    conn.request("GET", path)
    res = conn.getresponse()
    body = res.read()
    return (time.perf_counter() - t) * 1000, res.status, len(body)


def server_times(port: int, eid: str, repeat: int) -> dict[str, list[float]]:
    q = urllib.parse.quote
    paths = {
        "traces page (HTML, newest 50)": f"/experiments/{eid}",
        "traces page, errors only": f"/experiments/{eid}?filter={q(chr(39).join(['trace.status = ', 'ERROR', '']))}",
        "traces page, tag filter": f"/experiments/{eid}?filter={q(chr(39).join(['tags.env = ', 'prod', '']))}",
        "traces page, slowest first": f"/experiments/{eid}?order={q('execution_time_ms DESC')}",
        "next page (JSON)": None,
        "live-update poll": None,
        "experiments page": "/",
        "sessions page": f"/experiments/{eid}/sessions",
        "metrics 24 h (JSON)": f"/api/tracelake/experiments/{eid}/metrics?minutes=1440",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", f"/api/tracelake/experiments/{eid}/traces")
    first = json.loads(conn.getresponse().read())
    paths["next page (JSON)"] = f"/api/tracelake/experiments/{eid}/traces?page_token={q(first['next_page_token'])}"
    paths["live-update poll"] = f"/api/tracelake/experiments/{eid}/changes?since_seq={first['seq']}"
    out: dict[str, list[float]] = {}
    for name, path in paths.items():
        timed_get(conn, path)  # warm
        times = []
        for _ in range(repeat):
            ms, status, _size = timed_get(conn, path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            times.append(ms)
        out[name] = times
    conn.close()
    return out


def browser_times(url: str, repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    marks: dict[str, list[float]] = {"first spans interactive": [], "all spans loaded": [], "End key to last span": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for i in range(repeat + 1):
            page.goto(url)
            page.wait_for_selector("#span-tree[data-loaded]", timeout=60_000)
            ready = page.evaluate("performance.getEntriesByName('tracelake:tree-ready')[0].startTime")
            loaded = page.evaluate("performance.getEntriesByName('tracelake:tree-loaded')[0].startTime")
            page.focus("#span-tree")
            t = page.evaluate("performance.now()")
            page.keyboard.press("End")
            page.wait_for_function("document.querySelector('#span-tree .span-row.is-selected:not([hidden])')"
                                   " && document.querySelector('#span-tree').scrollTop > 0")
            key = page.evaluate("performance.now()") - t
            if i:  # the first load warms the HTTP cache, as a returning user has it
                marks["first spans interactive"].append(ready)
                marks["all spans loaded"].append(loaded)
                marks["End key to last span"].append(key)
            rows = page.locator("#span-tree .span-row").count()
        browser.close()
    print(f"  span rows in the DOM: {rows} (virtualised)")
    return marks


def report(title: str, results: dict[str, list[float]], target_ms: float | None = None) -> None:
    print(f"\n{title}")
    print(f"  {'':34} {'p50 ms':>9} {'p95 ms':>9}" + (f" {'p50 / target':>13}" if target_ms else ""))
    for name, times in results.items():
        p50 = statistics.median(times)
        line = f"  {name:34} {p50:9.1f} {percentile(times, 95):9.1f}"
        if target_ms:
            line += f" {p50 / target_ms:12.2f}x"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=1_000_000)
    ap.add_argument("--spans", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--browser-repeat", type=int, default=5)
    ap.add_argument("--keep", help="reuse/keep the data in this folder (loads only when empty)")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="ui-bench.")
    os.makedirs(work, exist_ok=True)
    uri, artifacts = f"sqlite:///{work}/tracelake.db", f"{work}/artifacts"
    marker = os.path.join(work, "experiment.json")
    if os.path.exists(marker):
        with open(marker) as fh:
            eid = json.load(fh)["experiment_id"]
        print(f"reusing {work} (experiment {eid})")
    else:
        print(f"loading {args.traces:,} traces into {work} …")
        eid = load_traces(uri, artifacts, args.traces)
        with open(marker, "w") as fh:
            json.dump({"experiment_id": eid}, fh)
    port = free_port()
    proc = start_tracelake(work, port, uri)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = big_trace_body(args.spans)
        conn.request("POST", "/v1/traces", body, {"content-type": "application/x-protobuf",
                                                  "x-tracelake-experiment-id": eid})
        conn.getresponse().read()
        conn.request("GET", f"/api/tracelake/experiments/{eid}/traces?filter="
                     + urllib.parse.quote("trace.name = 'big-batch-job'"))
        trace_id = json.loads(conn.getresponse().read())["traces"][0]["id"]
        report(f"Server time, experiment with {args.traces:,} traces (SQLite; target < 300 ms)",
               server_times(port, eid, args.repeat), 300)
        report(f"Headless Chromium, one trace of {args.spans:,} spans (target < 1000 ms to interactive)",
               browser_times(f"http://127.0.0.1:{port}/experiments/{eid}/traces/{trace_id}", args.browser_repeat),
               1000)
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
