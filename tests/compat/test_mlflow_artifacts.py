"""The mlflow client's artifact span path (``traces.json``), driven by the client's own code.

The client uploads ``traces.json`` instead of OTLP spans when ``GET /version`` fails or is older
than 3.4 (it then turns OTLP span logging off) and the StartTraceV3 answer does not say the server
keeps the spans. tracelake always says so, so the test puts the client into that mode directly:
``log_spans`` raising ``NotImplementedError`` is exactly what the client does on an old server.
"""
from __future__ import annotations

import base64
import json

import httpx
import mlflow
import pytest
from mlflow.tracing.client import TracingClient

from tests.compat.conftest import MlflowSession, SentTraces
from tests.compat.mlflow_app import assert_same_spans, root_fn, span_view, spans_by_name


@pytest.fixture
def artifact_span_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracing.export.mlflow_v3 import MlflowV3SpanExporter

    def old_server(self, *args, **kwargs):
        raise NotImplementedError("log_spans is not supported by this server version")

    monkeypatch.setattr(RestStore, "log_spans", old_server)
    monkeypatch.setattr(MlflowV3SpanExporter, "_should_log_spans_to_artifacts", lambda self, info: True)


def test_uploaded_traces_json_is_stored_as_spans(mlflow_client: MlflowSession, sent_traces: SentTraces,
                                                 artifact_span_path: None) -> None:
    mlflow.set_experiment("tl-artifacts")
    root_fn("hello", 2)
    sent = sent_traces.last()

    got = mlflow.get_trace(sent.info.trace_id)
    assert got is not None
    assert_same_spans(sent, got)
    assert spans_by_name(got)["llm"]["span_type"] == "CHAT_MODEL"
    # The spans are searchable like OTLP ones.
    found = mlflow.search_traces(locations=[sent.info.experiment_id], filter_string="span.type = 'RETRIEVER'",
                                 return_type="list")
    assert [t.info.trace_id for t in found] == [sent.info.trace_id]


def test_traces_json_download_rebuilds_the_upload(mlflow_client: MlflowSession, sent_traces: SentTraces) -> None:
    mlflow.set_experiment("tl-artifacts-get")
    root_fn("hello", 2)
    sent = sent_traces.last()
    info = mlflow.get_trace(sent.info.trace_id).info
    del info.tags["mlflow.trace.spansLocation"]  # read the way the client reads artifact-stored traces

    data = TracingClient(mlflow_client.url)._download_trace_data(info)
    assert {s.name: span_view(s) for s in data.spans} == spans_by_name(sent)


def test_traces_json_put_then_get_round_trip(live_server) -> None:
    experiment_id = live_server.create_experiment("tl-artifacts-raw")
    trace_hex = "0af7651916cd43dd8448eb211c80319c"
    trace_id = "tr-" + trace_hex
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()  # noqa: E731
    root, child = "b7ad6b7169203331", "00f067aa0ba902b7"
    body = {"spans": [
        {"trace_id": b64(trace_hex), "span_id": b64(root), "parent_span_id": None, "name": "agent",
         "start_time_unix_nano": 1_000_000_000, "end_time_unix_nano": 3_000_000_000, "events": [],
         "status": {"code": "STATUS_CODE_OK", "message": ""},
         "attributes": {"mlflow.traceRequestId": json.dumps(trace_id), "mlflow.spanType": '"AGENT"',
                        "mlflow.spanInputs": '{"q": "hi"}', "mlflow.spanOutputs": '"hello"', "k": "3"},
         "links": []},
        {"trace_id": b64(trace_hex), "span_id": b64(child), "parent_span_id": b64(root), "name": "llm",
         "start_time_unix_nano": 1_500_000_000, "end_time_unix_nano": 2_000_000_000,
         "events": [{"name": "exception", "time_unix_nano": 1_900_000_000,
                     "attributes": {"exception.type": "ValueError", "exception.message": "x"}}],
         "status": {"code": "STATUS_CODE_ERROR", "message": "ValueError: x"},
         "attributes": {"mlflow.traceRequestId": json.dumps(trace_id), "mlflow.spanType": '"LLM"',
                        "mlflow.spanInputs": '{"messages": [{"role": "user", "content": "hi"}]}',
                        "mlflow.chat.tokenUsage": '{"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}'},
         "links": []},
    ]}
    url = (f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/{trace_id}"
           "/artifacts/traces.json")
    put = httpx.put(url, content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert put.status_code == 200, put.text

    stored = live_server.store.get_trace(trace_id)
    by_name = {s.name: s for s in stored.spans}
    assert by_name["llm"].span_type == "LLM"
    assert by_name["llm"].parent_span_id == root
    assert (by_name["llm"].input_tokens, by_name["llm"].output_tokens) == (3, 2)
    assert by_name["agent"].inputs == '{"q": "hi"}'

    got = httpx.get(url)
    assert got.status_code == 200
    spans = {s["name"]: s for s in got.json()["spans"]}
    for sent_span in body["spans"]:
        back = spans[sent_span["name"]]
        for key in ("trace_id", "span_id", "parent_span_id", "start_time_unix_nano", "end_time_unix_nano",
                    "status", "events"):
            assert back[key] == sent_span[key], key
        decoded = {k: json.loads(v) for k, v in back["attributes"].items()}
        assert decoded == {k: json.loads(v) for k, v in sent_span["attributes"].items()}


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400),
    (b'{"spans": {}}', 400),
    (b'{"spans": [{"trace_id": "xx", "span_id": "yy", "name": "a", "start_time_unix_nano": 1}]}', 400),
], ids=["not-json", "spans-not-a-list", "bad-ids"])
def test_traces_json_put_rejects_bad_bodies(live_server, body: bytes, status: int) -> None:
    experiment_id = live_server.create_experiment("tl-artifacts-bad")
    url = (f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces/tr-{'1' * 32}"
           "/artifacts/traces.json")
    resp = httpx.put(url, content=body)
    assert resp.status_code == status
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_traces_json_of_an_unknown_trace_is_a_json_404(live_server) -> None:
    url = f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/0/traces/tr-{'2' * 32}/artifacts/traces.json"
    resp = httpx.get(url)
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_server_info(live_server) -> None:
    resp = httpx.get(f"{live_server.url}/api/3.0/mlflow/server-info")
    assert resp.status_code == 200
    assert resp.json()["multipart_downloads_enabled"] is False
