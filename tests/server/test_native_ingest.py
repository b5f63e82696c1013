"""The SDK's native ingest (``POST /api/tracelake/v1/spans``): stored like OTLP, bad input answered 4xx."""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import orjson
import pytest

import tracelake
from tracelake import SpanType
from tracelake.errors import Overloaded
from tracelake.ingest.native import CONTENT_TYPE, decode_native_request
from tracelake.ingest.pipeline import decode_request
from tracelake.tracing import wire
from tracelake.tracing.exporters.memory import InMemorySpanExporter
from tracelake.tracing.exporters.server import NATIVE_PATH

NATIVE = {"content-type": CONTENT_TYPE}
RESOURCE = {"service.name": "svc", "telemetry.sdk.name": "tracelake"}


@pytest.fixture
def sdk_spans() -> Iterator[list[tracelake.Span]]:
    """Spans of one trace made by the real SDK: every field the native format carries is set."""
    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory)
    try:
        with tracelake.start_span("agent", span_type=SpanType.AGENT) as root:
            root.set_inputs({"q": "hi"})
            tracelake.update_current_trace(tags={"t": "1"}, session_id="s", user="u", client_request_id="c-1")
            with tracelake.start_span("llm", span_type=SpanType.LLM) as llm:
                llm.set_token_usage(3, 4)
                llm.set_attributes({"temperature": 0.5, "n": 2, "stream": False, "stop": ["a", "b"],
                                    "params": {"k": 1}, "llm.model_name": "gpt-x"})
                llm.add_event("retry", {"attempt": 1})
                llm.set_outputs("hello")
            with pytest.raises(ValueError):
                with tracelake.start_span("tool", span_type=SpanType.TOOL):
                    raise ValueError("bad tool")
            root.set_outputs({"answer": "hello"})
        assert tracelake.flush(10)
        yield memory.get_finished_spans()
    finally:
        tracelake.shutdown()
        tracelake.configure(disabled=False)


def _native_body(spans, resource=RESOURCE) -> bytes:
    return wire.encode_native(spans, resource)


def _decode(body: bytes, **kwargs):
    return decode_native_request(body, CONTENT_TYPE, None, max_bytes=1 << 20, default_experiment_id="0",
                                 header_experiment_id=kwargs.get("experiment_id"),
                                 header_experiment_name=kwargs.get("experiment_name"))


def test_a_native_batch_decodes_exactly_like_the_same_spans_sent_as_otlp_json(sdk_spans):
    native = _decode(_native_body(sdk_spans))
    otlp = decode_request(wire.encode_otlp_json(sdk_spans, RESOURCE), "application/json", None,
                          max_bytes=1 << 20, default_experiment_id="0", header_experiment_id=None)
    assert (native.span_count, native.trace_count) == (otlp.span_count, otlp.trace_count) == (3, 1)
    (got,), (want,) = native.batches, otlp.batches
    assert sorted(got.spans, key=lambda s: s.span_id) == sorted(want.spans, key=lambda s: s.span_id)
    assert got.traces == want.traces
    llm = next(s for s in got.spans if s.name == "llm")
    assert (llm.span_type, llm.model, llm.input_tokens, llm.total_tokens) == ("LLM", "gpt-x", 3, 7)
    assert got.traces[0].tags == {"t": "1"}
    assert got.traces[0].client_request_id == "c-1"


def test_sdk_batch_is_stored_and_readable_through_the_mlflow_api(client, sdk_spans):
    body = gzip.compress(_native_body(sdk_spans))
    r = client.post(NATIVE_PATH, content=body, headers={**NATIVE, "content-encoding": "gzip",
                                                          "x-tracelake-experiment-name": "native-exp"})
    assert r.status_code == 200, r.text
    assert r.json() == {"spans": 3}
    experiment_id = client.get("/api/2.0/mlflow/experiments/get-by-name",
                               params={"experiment_name": "native-exp"}).json()["experiment"]["experiment_id"]
    trace_id = sdk_spans[0].trace_id
    got = client.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id}).json()["trace"]
    assert got["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"] == experiment_id
    assert got["trace_info"]["state"] == "ERROR" or got["trace_info"]["state"] == "OK"
    assert got["trace_info"]["tags"]["t"] == "1"
    assert {s["name"] for s in got["spans"]} == {"agent", "llm", "tool"}


def test_resending_a_batch_creates_no_duplicates(client, sdk_spans):
    body = _native_body(sdk_spans)
    for _ in range(2):
        assert client.post(NATIVE_PATH, content=body, headers=NATIVE).status_code == 200
    got = client.get("/api/3.0/mlflow/traces/get", params={"trace_id": sdk_spans[0].trace_id}).json()["trace"]
    assert len(got["spans"]) == 3


def _row(**changes):
    fields = dict(enumerate([1, 2, 3, 0, "s", "UNKNOWN", 10, 20, 1, "", None, None, None, None, None, None]))
    fields.update({int(k[1:]): v for k, v in changes.items()})
    return [fields[i] for i in range(16)]


def _doc(*rows, **top):
    return json.dumps({"version": 1, "resource": {}, "spans": list(rows), **top}).encode()


BAD_REQUESTS = [
    # (what, body, headers, status, words in the message)
    ("not JSON", b"\x00garbage{", {}, 400, "not JSON"),
    ("a JSON array", b"[1, 2]", {}, 400, "JSON object"),
    ("no version", orjson.dumps({"spans": []}), {}, 400, '"version"'),
    ("a version as text", orjson.dumps({"version": "1", "spans": []}), {}, 400, '"version"'),
    ("a future version", orjson.dumps({"version": 2, "spans": []}), {}, 415, "version 2"),
    ("spans not an array", orjson.dumps({"version": 1, "spans": {}}), {}, 400, '"spans"'),
    ("resource not an object", _doc(resource=[1]), {}, 400, '"resource"'),
    ("a row that is an object", _doc({"name": "x"}), {}, 400, "spans[0]: expected an array of 16"),
    ("a short row", _doc([1, 2, 3]), {}, 400, "spans[0]: expected an array of 16"),
    ("a trace id as hex", _doc(_row(f0="abc")), {}, 400, "spans[0][0] (trace id (high 64 bits))"),
    ("a negative span id", _doc(_row(f2=-1)), {}, 400, "[2] (span id)"),
    ("a span id over 64 bits", _doc(_row(f2=1 << 64)), {}, 400, "[2] (span id)"),
    ("a boolean parent id", _doc(_row(f3=True)), {}, 400, "[3] (parent span id)"),
    ("a numeric name", _doc(_row(f4=7)), {}, 400, "[4] (name): expected a string"),
    ("a start time as text", _doc(_row(f6="10")), {}, 400, "[6] (start time)"),
    ("a status of 7", _doc(_row(f8=7)), {}, 400, "[8] (status code)"),
    ("inputs as an object", _doc(_row(f10={"q": 1})), {}, 400, "[10] (inputs): expected a string or null"),
    ("attributes as a list", _doc(_row(f12=[1])), {}, 400, "[12] (attributes)"),
    ("a malformed event", _doc(_row(f13=[["e"]])), {}, 400, "[13][0] (event)"),
    ("token usage of two numbers", _doc(_row(f14=[1, 2])), {}, 400, "[14] (token usage)"),
    ("trace tags as text", _doc(_row(f15={"tags": "x"})), {}, 400, "[15].tags"),
    ("a zero trace id", _doc(_row(f0=0, f1=0)), {}, 422, "trace id is zero"),
    ("a zero span id", _doc(_row(f2=0)), {}, 422, "span id is zero"),
    ("no start time", _doc(_row(f6=0)), {}, 422, "start time is missing"),
    ("an end before the start", _doc(_row(f7=5)), {}, 422, "before start time"),
    ("a gzip header on plain JSON", _doc(_row()), {"content-encoding": "gzip"}, 400, "gzip"),
    ("an unknown encoding", _doc(_row()), {"content-encoding": "br"}, 415, "Content-Encoding"),
    ("OTLP JSON sent here", b'{"resourceSpans": []}', {"content-type": "application/json"}, 415, CONTENT_TYPE),
]


@pytest.mark.parametrize(("what", "body", "headers", "status", "words"), BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_is_answered_4xx_with_a_clear_message(client, what, body, headers, status, words):
    r = client.post(NATIVE_PATH, content=body, headers={**NATIVE, **headers})
    assert r.status_code == status, r.text
    assert words in r.json()["message"]


def test_a_valid_minimal_row_is_accepted(client):
    r = client.post(NATIVE_PATH, content=_doc(_row()), headers=NATIVE)
    assert r.status_code == 200, r.text


def test_too_large_body_is_413(settings, sdk_spans):
    from starlette.testclient import TestClient

    from tracelake.server import create_app

    with TestClient(create_app(settings.replace(max_request_bytes=1000))) as small:
        r = small.post(NATIVE_PATH, content=_native_body(sdk_spans * 20), headers=NATIVE)
        assert r.status_code == 413


def test_unknown_experiment_is_404(client, sdk_spans):
    r = client.post(NATIVE_PATH, content=_native_body(sdk_spans),
                    headers={**NATIVE, "x-tracelake-experiment-id": "999"})
    assert r.status_code == 404


def test_a_full_writer_answers_503_with_retry_after(client, sdk_spans, monkeypatch):
    def full(batch):
        raise Overloaded("The trace writer queue is full; retry later", retry_after=2)

    monkeypatch.setattr(client.app.state.ctx.writer, "submit", full)
    r = client.post(NATIVE_PATH, content=_native_body(sdk_spans), headers=NATIVE)
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
