"""Large traces: span content above the threshold goes to artifact storage and reads back."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select
from store_factories import batch, make_span, new_trace_hex

from tracelake.store.artifacts import Artifacts
from tracelake.store.sql.schema import spans as spans_table
from tracelake.store.sql.store import SqlStore

MB = 1024 * 1024


def big_json(n_bytes: int, seed: str) -> str:
    return json.dumps({"seed": seed, "text": "y" * (n_bytes - 40)})


def content_uris(store: SqlStore, trace_hex: str) -> dict[str, str | None]:
    with store.read() as conn:
        rows = conn.execute(select(spans_table.c.span_id, spans_table.c.content_uri)
                            .where(spans_table.c.trace_id == "tr-" + trace_hex)).all()
    return {r[0]: r[1] for r in rows}


def test_fifty_one_megabyte_spans(store_uri: str, tmp_path: Path) -> None:
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "art"))
    try:
        eid = store.create_experiment("big")
        tid = new_trace_hex()
        root = make_span(tid, name="root", duration_ms=1000)
        kids = [make_span(tid, parent=root.span_id, start_ms=i + 1, outputs=big_json(MB, str(i)))
                for i in range(50)]
        store.write_spans([batch(eid, kids[:25]), batch(eid, kids[25:] + [root])])
        uris = content_uris(store, tid)
        assert uris[root.span_id] is None  # small spans stay in the row
        for kid in kids:
            uri = uris[kid.span_id]
            assert uri == f"{tmp_path}/art/{eid}/traces/tr-{tid}/spans/{kid.span_id}.json"
            assert Path(uri).stat().st_size > MB
        trace = store.get_trace(tid)
        assert trace.info.span_count == 51 and trace.info.state == "OK"
        assert [s.outputs for s in trace.spans[1:]] == [k.outputs for k in kids]
        assert trace.spans[1].attributes == kids[0].attributes
        page = store.get_trace(tid, max_spans=10)
        assert len(page.spans) == 10 and page.next_span_page_token
    finally:
        store.close()


def test_one_twenty_megabyte_span_with_attributes_and_events(store_uri: str, tmp_path: Path) -> None:
    from tracelake.entities import SpanEvent

    store = SqlStore(store_uri, artifact_root=str(tmp_path / "art"))
    try:
        tid = new_trace_hex()
        span = make_span(tid, name="root", inputs=big_json(20 * MB, "in"), outputs='"done"',
                         attributes={"k": "v", "n": 3}, events=[SpanEvent("chunk", 5, {"i": 1})])
        store.write_spans([batch("0", [span])])
        assert content_uris(store, tid)[span.span_id] is not None
        [got] = store.get_trace(tid).spans
        assert got.inputs == span.inputs and got.outputs == '"done"'
        assert got.attributes == {"k": "v", "n": 3}
        assert got.events == [SpanEvent("chunk", 5, {"i": 1})]
        assert store.get_trace_info(tid).request_preview == span.inputs[:1000]
        assert store.delete_traces("0", trace_ids=[tid]) == 1
        assert not (tmp_path / "art" / "0" / "traces" / f"tr-{tid}").exists()
    finally:
        store.close()


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on loopback (never real AWS)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_offload_to_s3(store_uri: str, s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="traces")
    store = SqlStore(store_uri, artifact_root="s3://traces/root", artifacts=Artifacts(s3_endpoint_url=s3_endpoint))
    try:
        eid = store.create_experiment("s3")
        assert store.get_experiment(eid).artifact_location == f"s3://traces/root/{eid}"
        tid = new_trace_hex()
        root = make_span(tid, name="root", inputs=big_json(3 * MB, "r"))
        kid = make_span(tid, parent=root.span_id, outputs=big_json(200_000, "k"))
        store.write_spans([batch(eid, [root, kid])])
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="traces")["Contents"])
        assert keys == sorted(f"root/{eid}/traces/tr-{tid}/spans/{s.span_id}.json" for s in (root, kid))
        got = store.get_trace(tid).spans
        assert [s.inputs for s in got] == [root.inputs, None]
        assert got[1].outputs == kid.outputs
        store.delete_traces(eid, trace_ids=[tid])
        assert "Contents" not in client.list_objects_v2(Bucket="traces")
    finally:
        store.close()
