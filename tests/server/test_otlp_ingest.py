"""OTLP/HTTP ingest through the ASGI app: stored, idempotent, errors answered distinctly."""
from __future__ import annotations

import gzip
import json

from tests.server.otlp_helpers import five_span_trace, protobuf_body, record

PB = {"content-type": "application/x-protobuf"}


def _search(client, experiment_id="0", filter_string=None, **extra):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}],
            "max_results": 100, **extra}
    if filter_string:
        body["filter"] = filter_string
    r = client.post("/api/3.0/mlflow/traces/search", json=body)
    assert r.status_code == 200, r.text
    return r.json().get("traces", [])


def test_protobuf_trace_is_stored_and_searchable(client):
    spans = record(five_span_trace)
    r = client.post("/v1/traces", content=protobuf_body(spans), headers=PB)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    traces = _search(client)
    assert len(traces) == 1
    info = traces[0]
    assert info["trace_id"] == "tr-" + format(spans[0].context.trace_id, "032x")
    assert info["state"] == "OK"
    assert json.loads(info["request_preview"]) == {"q": "hi"}


def test_get_trace_returns_the_tree(client):
    spans = record(five_span_trace)
    client.post("/v1/traces", content=protobuf_body(spans), headers=PB)
    trace_id = "tr-" + format(spans[0].context.trace_id, "032x")
    r = client.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
    assert r.status_code == 200, r.text
    got = r.json()["trace"]
    assert len(got["spans"]) == 5
    names = {s["name"] for s in got["spans"]}
    assert names == {"agent", "retrieve", "llm", "tool", "inner-llm"}
    attrs = {s["name"]: {a["key"]: a["value"] for a in s["attributes"]} for s in got["spans"]}
    types = {name: a["mlflow.spanType"]["string_value"] for name, a in attrs.items()}
    assert types["llm"] == "LLM" and types["retrieve"] == "RETRIEVER"


def test_resending_the_same_spans_creates_no_duplicates(client):
    body = protobuf_body(record(five_span_trace))
    for _ in range(3):
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    traces = _search(client)
    assert len(traces) == 1
    r = client.get("/api/3.0/mlflow/traces/get", params={"trace_id": traces[0]["trace_id"]})
    assert len(r.json()["trace"]["spans"]) == 5


def test_spans_in_separate_batches_complete_the_trace_when_root_arrives(client):
    spans = record(five_span_trace)
    root = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]
    assert client.post("/v1/traces", content=protobuf_body(children), headers=PB).status_code == 200
    assert _search(client)[0]["state"] == "IN_PROGRESS"
    assert client.post("/v1/traces", content=protobuf_body(root), headers=PB).status_code == 200
    assert _search(client)[0]["state"] == "OK"


def test_gzip_and_experiment_header(client):
    r = client.post("/api/2.0/mlflow/experiments/create", json={"name": "gz"})
    experiment_id = r.json()["experiment_id"]
    body = gzip.compress(protobuf_body(record(five_span_trace)))
    r = client.post("/v1/traces", content=body,
                    headers={**PB, "content-encoding": "gzip", "x-tracelake-experiment-id": experiment_id})
    assert r.status_code == 200, r.text
    assert len(_search(client, experiment_id)) == 1
    assert _search(client, "0") == []


def test_mlflow_experiment_header_is_accepted(client):
    experiment_id = client.post("/api/2.0/mlflow/experiments/create", json={"name": "mlf"}).json()["experiment_id"]
    r = client.post("/v1/traces", content=protobuf_body(record(five_span_trace)),
                    headers={**PB, "x-mlflow-experiment-id": experiment_id})
    assert r.status_code == 200
    assert len(_search(client, experiment_id)) == 1


def test_wrong_content_type_is_415(client):
    r = client.post("/v1/traces", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/x-protobuf" in r.json()["message"]


def test_undecodable_protobuf_is_400(client):
    r = client.post("/v1/traces", content=b"\xff\xff\xff\xff garbage", headers=PB)
    assert r.status_code == 400
    assert r.json()["message"]


def test_bad_json_is_400(client):
    r = client.post("/v1/traces", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_too_large_body_is_413(settings):
    from starlette.testclient import TestClient

    from tracelake.server import create_app

    with TestClient(create_app(settings.replace(max_request_bytes=1000))) as small:
        body = protobuf_body(record(five_span_trace)) * 10
        r = small.post("/v1/traces", content=body, headers=PB)
        assert r.status_code == 413


def test_unknown_experiment_is_404_and_nothing_stored(client):
    r = client.post("/v1/traces", content=protobuf_body(record(five_span_trace)),
                    headers={**PB, "x-tracelake-experiment-id": "999"})
    assert r.status_code == 404
    assert _search(client) == []


def test_ingest_rate_limit_answers_429_with_retry_after(settings):
    from starlette.testclient import TestClient

    from tracelake.server import create_app

    with TestClient(create_app(settings.replace(ingest_rate=0.001, ingest_burst=1))) as limited:
        body = protobuf_body(record(five_span_trace))
        assert limited.post("/v1/traces", content=body, headers=PB).status_code == 200
        r = limited.post("/v1/traces", content=body, headers=PB)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1



def _wait_for(condition, what: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_full_write_queue_answers_503_with_retry_after(client):
    """While the writer is stuck (another transaction holds the store's write lock), ingest
    beyond the queue gets 503 + Retry-After; the accepted requests commit afterwards."""
    import threading

    from tracelake.store.sql.writer import GroupCommitWriter

    ctx = client.app.state.ctx
    old_writer = ctx.writer
    writer = ctx.writer = GroupCommitWriter(ctx.store, max_queue=1)
    release, holding = threading.Event(), threading.Event()
    submitted = threading.Semaphore(0)
    original_submit = writer.submit

    def counting_submit(batch):
        future = original_submit(batch)
        submitted.release()
        return future

    writer.submit = counting_submit

    def hold_write_lock():
        with ctx.store.write():
            holding.set()
            release.wait(60)

    def post(results):
        results.append(client.post("/v1/traces", content=protobuf_body(record(five_span_trace)),
                                   headers=PB).status_code)

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    assert holding.wait(30)
    results: list[int] = []
    senders = [threading.Thread(target=post, args=(results,)) for _ in range(2)]
    try:
        senders[0].start()  # taken by the writer thread, which then waits for the lock
        assert submitted.acquire(timeout=30)
        _wait_for(lambda: writer.queued == 0, "the writer to take the first batch")
        senders[1].start()  # waits in the queue, which is now full
        assert submitted.acquire(timeout=30)
        assert writer.queued == 1
        r = client.post("/v1/traces", content=protobuf_body(record(five_span_trace)), headers=PB)
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert "retry" in r.json()["message"]
    finally:
        release.set()
        holder.join()
        for t in senders:
            t.join()
        writer.close()
        ctx.writer = old_writer
    assert results == [200, 200]
    assert len(_search(client)) == 2
