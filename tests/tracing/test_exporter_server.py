"""The tracelake server exporter: the native batch (or OTLP/JSON for servers without it) over HTTP
per the wire contract, fallback, retries, keep-alive."""
from __future__ import annotations

import email.utils
import time

import orjson
import pytest

import tracelake
from tracelake import SpanType
from tracelake.tracing.exporters._http import HttpSender, RetryPolicy, parse_retry_after
from tracelake.tracing.exporters import server as server_exporter
from tracelake.tracing.exporters.server import NATIVE_PATH, TracelakeServerExporter
from tracelake.tracing.wire import NATIVE_CONTENT_TYPE

from .conftest import Collector, free_port

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


def _attrs(kvs):
    out = {}
    for kv in kvs:
        ((kind, value),) = kv["value"].items()
        out[kv["key"]] = value if kind != "arrayValue" else [next(iter(v.values())) for v in value["values"]]
    return out


@pytest.fixture
def otlp_only(collector):
    """A server without the native endpoint (an older tracelake, MLflow, a collector): 404 there."""
    collector.missing.add(NATIVE_PATH)
    return collector


def _otlp_requests(collector):
    """The OTLP/JSON requests, after checking the one native attempt that was refused."""
    native = [r for r in collector.requests if r.path == NATIVE_PATH]
    assert len(native) == 1
    return [r for r in collector.requests if r.path != NATIVE_PATH]


def _send_one_trace(collector, **config):
    tracelake.configure(tracking_uri=collector.url, service_name="svc", **config)
    with tracelake.start_span("agent", span_type=SpanType.AGENT) as root:
        root.set_inputs({"q": "hi"})
        tracelake.update_current_trace(tags={"t": "1"}, session_id="s", user="u", client_request_id="c-1")
        with tracelake.start_span("llm", span_type=SpanType.LLM) as llm:
            llm.set_token_usage(3, 4)
            llm.set_attributes({"temperature": 0.5, "n": 2, "stream": False, "stop": ["a", "b"],
                                "params": {"k": 1}})
            llm.add_event("retry", {"attempt": 1})
            llm.set_outputs("hello")
    assert tracelake.flush(10)
    return root


def test_export_posts_otlp_json_with_experiment_name_and_token_to_a_server_without_native(otlp_only):
    _send_one_trace(otlp_only, experiment_name="my-exp", token="s3cret", export_compression="gzip")
    (req,) = _otlp_requests(otlp_only)
    assert req.path == "/v1/traces"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["content-encoding"] == "gzip"
    assert req.headers["x-tracelake-experiment-name"] == "my-exp"
    assert "x-tracelake-experiment-id" not in req.headers
    assert req.headers["authorization"] == "Bearer s3cret"
    doc = orjson.loads(req.body)
    (rs,) = doc["resourceSpans"]
    resource = _attrs(rs["resource"]["attributes"])
    assert resource["service.name"] == "svc"
    assert resource["tracelake.experiment_name"] == "my-exp"
    (scope,) = rs["scopeSpans"]
    assert scope["scope"]["name"] == "tracelake"
    assert {s["name"] for s in scope["spans"]} == {"agent", "llm"}


def test_experiment_id_header_wins_over_name(otlp_only):
    _send_one_trace(otlp_only, experiment_name="n", experiment_id="42")
    (req,) = _otlp_requests(otlp_only)
    assert req.headers["x-tracelake-experiment-id"] == "42"
    assert "x-tracelake-experiment-name" not in req.headers
    assert "authorization" not in req.headers
    resource = _attrs(orjson.loads(req.body)["resourceSpans"][0]["resource"]["attributes"])
    assert resource["tracelake.experiment_id"] == "42"


def test_spans_follow_the_otlp_json_and_mlflow_attribute_conventions(otlp_only):
    root = _send_one_trace(otlp_only)
    spans = {s["name"]: s for s in orjson.loads(_otlp_requests(otlp_only)[0].body)["resourceSpans"][0]
             ["scopeSpans"][0]["spans"]}
    agent, llm = spans["agent"], spans["llm"]
    assert agent["traceId"] == root.otel_trace_id and len(agent["traceId"]) == 32
    assert len(agent["spanId"]) == 16 and "parentSpanId" not in agent
    assert llm["parentSpanId"] == agent["spanId"]
    assert llm["kind"] == 1
    assert int(llm["endTimeUnixNano"]) >= int(llm["startTimeUnixNano"]) > 0
    assert isinstance(llm["startTimeUnixNano"], str)
    assert llm["status"] == {"code": 1, "message": ""}
    attrs = _attrs(llm["attributes"])
    assert attrs["mlflow.spanType"] == '"LLM"'
    assert attrs["mlflow.traceRequestId"] == f'"{root.trace_id}"'
    assert attrs["mlflow.spanOutputs"] == '"hello"'
    assert orjson.loads(attrs["mlflow.chat.tokenUsage"]) == {"input_tokens": 3, "output_tokens": 4,
                                                             "total_tokens": 7}
    raw = {kv["key"]: kv["value"] for kv in llm["attributes"]}
    assert raw["temperature"] == {"doubleValue": 0.5}
    assert raw["n"] == {"intValue": "2"}
    assert raw["stream"] == {"boolValue": False}
    assert raw["stop"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert raw["params"] == {"stringValue": '{"k":1}'}
    (event,) = llm["events"]
    assert event["name"] == "retry" and event["attributes"] == [{"key": "attempt", "value": {"intValue": "1"}}]
    root_attrs = _attrs(agent["attributes"])
    assert orjson.loads(root_attrs["mlflow.spanInputs"]) == {"q": "hi"}
    assert orjson.loads(root_attrs["tracelake.trace.tags"]) == {"t": "1"}
    assert orjson.loads(root_attrs["tracelake.trace.metadata"]) == {"mlflow.trace.session": "s",
                                                                    "mlflow.trace.user": "u"}
    assert root_attrs["tracelake.trace.client_request_id"] == "c-1"
    assert orjson.loads(root_attrs["mlflow.trace.tokenUsage"])["total_tokens"] == 7


def test_error_span_is_sent_with_status_2_and_an_exception_event(otlp_only):
    tracelake.configure(tracking_uri=otlp_only.url)
    with pytest.raises(TimeoutError):
        with tracelake.start_span("call"):
            raise TimeoutError("too slow")
    assert tracelake.flush(10)
    (span,) = orjson.loads(_otlp_requests(otlp_only)[0].body)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert span["status"] == {"code": 2, "message": "TimeoutError: too slow"}
    (event,) = span["events"]
    attrs = _attrs(event["attributes"])
    assert event["name"] == "exception"
    assert attrs["exception.type"] == "TimeoutError"
    assert attrs["exception.message"] == "too slow"
    assert "Traceback" in attrs["exception.stacktrace"]


def test_native_batch_is_posted_gzipped_with_experiment_name_and_token(collector):
    _send_one_trace(collector, experiment_name="my-exp", token="s3cret", export_compression="gzip")
    (req,) = collector.requests
    assert req.path == NATIVE_PATH
    assert req.headers["content-type"] == NATIVE_CONTENT_TYPE
    assert req.headers["content-encoding"] == "gzip"
    assert req.headers["x-tracelake-experiment-name"] == "my-exp"
    assert req.headers["authorization"] == "Bearer s3cret"
    doc = orjson.loads(req.body)
    assert doc["version"] == 1
    assert doc["resource"]["service.name"] == "svc"
    assert doc["resource"]["tracelake.experiment_name"] == "my-exp"
    assert {row[4] for row in doc["spans"]} == {"agent", "llm"}


def test_native_rows_carry_every_span_field(collector):
    root = _send_one_trace(collector)
    rows = {row[4]: row for row in orjson.loads(collector.requests[0].body)["spans"]}
    agent, llm = rows["agent"], rows["llm"]
    assert f"{agent[0]:016x}{agent[1]:016x}" == root.otel_trace_id
    assert (llm[0], llm[1]) == (agent[0], agent[1])
    assert f"{agent[2]:016x}" == root.span_id and agent[3] == 0
    assert llm[3] == agent[2]
    assert llm[5] == "LLM" and agent[5] == "AGENT"
    assert llm[7] >= llm[6] > 0
    assert (llm[8], llm[9]) == (1, "")
    assert orjson.loads(agent[10]) == {"q": "hi"} and llm[11] == '"hello"'
    assert llm[12] == {"temperature": 0.5, "n": 2, "stream": False, "stop": ["a", "b"], "params": '{"k":1}'}
    assert llm[13] == [["retry", llm[13][0][1], {"attempt": 1}]]
    assert llm[14] == [3, 4, 7] and llm[15] is None
    assert agent[15] == {"tags": {"t": "1"}, "client_request_id": "c-1", "token_usage": [3, 4, 7],
                         "metadata": {"mlflow.trace.session": "s", "mlflow.trace.user": "u"}}


def test_error_span_is_sent_natively_with_status_2_and_an_exception_event(collector):
    tracelake.configure(tracking_uri=collector.url)
    with pytest.raises(TimeoutError):
        with tracelake.start_span("call"):
            raise TimeoutError("too slow")
    assert tracelake.flush(10)
    (row,) = orjson.loads(collector.requests[0].body)["spans"]
    assert (row[8], row[9]) == (2, "TimeoutError: too slow")
    ((name, _, attrs),) = row[13]
    assert name == "exception" and attrs["exception.type"] == "TimeoutError"


@pytest.mark.parametrize("status", [404, 405, 415, 501])
def test_a_server_without_native_gets_the_same_batch_as_otlp_json_from_then_on(collector, status):
    collector.replies = [(status, {})]
    exporter = TracelakeServerExporter(collector.url, retry=FAST_RETRY)
    tracelake.configure(exporter=exporter, schedule_delay_s=0.05)
    tracelake.start_span("first").end()
    assert tracelake.flush(10)
    tracelake.start_span("second").end()
    assert tracelake.flush(10)
    assert [r.path for r in collector.requests] == [NATIVE_PATH, "/v1/traces", "/v1/traces"]
    assert not exporter.uses_native
    names = [orjson.loads(r.body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"]
             for r in collector.requests[1:]]
    assert names == ["first", "second"]
    assert tracelake.get_export_stats().exported == 2


def test_a_rejected_native_batch_is_dropped_not_resent_as_otlp(collector, caplog):
    collector.replies = [(400, {})]
    exporter = TracelakeServerExporter(collector.url, retry=FAST_RETRY)
    tracelake.configure(exporter=exporter)
    tracelake.start_span("bad").end()
    assert tracelake.flush(10)
    assert [r.path for r in collector.requests] == [NATIVE_PATH]
    assert exporter.uses_native
    assert tracelake.get_export_stats().failed == 1
    assert "rejected an export batch (HTTP 400" in caplog.text


@pytest.mark.parametrize(("uri", "setting", "gzipped"), [
    ("http://127.0.0.1:{port}", "auto", False), ("http://localhost:{port}", "auto", False),
    ("http://127.0.0.1:{port}", "gzip", True), ("http://127.0.0.1:{port}", "none", False),
])
def test_compression_is_gzip_unless_off_or_the_server_is_on_this_machine(collector, uri, setting, gzipped):
    port = collector.url.rsplit(":", 1)[1]
    tracelake.configure(tracking_uri=uri.format(port=port), export_compression=setting)
    tracelake.start_span("s").end()
    assert tracelake.flush(10)
    (req,) = collector.requests
    assert (req.headers.get("content-encoding") == "gzip") is gzipped
    assert orjson.loads(req.body)["version"] == 1


def test_a_remote_server_gets_gzip_by_default():
    from tracelake.tracing.exporters._http import is_loopback

    assert not is_loopback("https://tracelake.example.com")
    assert not is_loopback("http://10.0.0.7:5000")
    assert is_loopback("http://[::1]:5000") and is_loopback("http://127.0.0.2:5000")
    exporter = TracelakeServerExporter("https://tracelake.example.com")
    assert exporter._native._compress and exporter._otlp._compress


def test_batches_reuse_one_keep_alive_connection(collector):
    exporter = TracelakeServerExporter(collector.url)
    tracelake.configure(exporter=exporter, max_export_batch_size=10)
    for batch in range(4):
        for i in range(10):
            tracelake.start_span(f"s{batch}.{i}").end()
        assert tracelake.flush(10)
    assert len(collector.requests) == 4
    assert len({r.client_port for r in collector.requests}) == 1


def test_a_backlog_goes_out_in_few_requests_of_bounded_size(collector, monkeypatch):
    monkeypatch.setattr(server_exporter, "PART_ROWS", 10)
    monkeypatch.setattr(server_exporter, "MAX_REQUEST_BYTES", 7000)
    exporter = TracelakeServerExporter(collector.url)
    tracelake.configure(exporter=exporter, max_export_batch_size=10, schedule_delay_s=60)
    for i in range(95):  # one wake-up at 10 queued spans; the export thread finds the rest queued
        tracelake.start_span(f"s{i}", inputs="x" * 40).end()
    assert tracelake.flush(10)
    bodies = [orjson.loads(r.body) for r in collector.requests]
    names = [row[4] for body in bodies for row in body["spans"]]
    assert sorted(names) == sorted(f"s{i}" for i in range(95))
    assert len(collector.requests) < 10  # fewer requests than batches of 10
    assert all(len(r.body) <= 7000 for r in collector.requests)
    assert all(body["resource"] == exporter.resource for body in bodies)
    assert tracelake.get_export_stats().exported == 95


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_retried_until_accepted(collector, status):
    collector.replies = [(status, {}), (status, {})]
    sender = HttpSender(collector.url + "/v1/traces", {}, retry=FAST_RETRY)
    assert sender.post(b"{}")
    assert len(collector.requests) == 3


def test_retry_after_is_honoured(collector, monkeypatch):
    waits = []
    collector.replies = [(429, {"Retry-After": "7"})]
    sender = HttpSender(collector.url + "/v1/traces", {}, retry=RetryPolicy(3, 0.01, 30.0))
    monkeypatch.setattr(sender._stop, "wait", lambda s: waits.append(s) or False)
    assert sender.post(b"{}")
    assert waits == [7.0]


def test_retry_after_is_capped_by_max_backoff(collector, monkeypatch):
    waits = []
    collector.replies = [(503, {"Retry-After": "3600"})]
    sender = HttpSender(collector.url + "/v1/traces", {}, retry=RetryPolicy(3, 0.01, 2.0))
    monkeypatch.setattr(sender._stop, "wait", lambda s: waits.append(s) or False)
    assert sender.post(b"{}")
    assert waits == [2.0]


def test_parse_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    assert parse_retry_after("12") == 12.0
    assert 29 <= parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) <= 31
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_client_errors_are_not_retried_and_are_logged(collector, caplog):
    collector.replies = [(400, {})]
    sender = HttpSender(collector.url + "/v1/traces", {}, retry=FAST_RETRY)
    assert not sender.post(b"{}")
    assert len(collector.requests) == 1
    assert "rejected an export batch (HTTP 400" in caplog.text


def test_connection_errors_are_retried_then_given_up_with_one_warning(caplog):
    sender = HttpSender(f"http://127.0.0.1:{free_port()}/v1/traces", {}, retry=FAST_RETRY)
    assert not sender.post(b"{}")
    assert not sender.post(b"{}")
    warnings = [r for r in caplog.records if "could not export spans" in r.message]
    assert len(warnings) == 1  # rate-limited


def test_the_same_sender_reaches_a_server_that_comes_back():
    port = free_port()
    sender = HttpSender(f"http://127.0.0.1:{port}/v1/traces", {}, retry=RetryPolicy(2, 0.01, 0.05))
    assert not sender.post(b"{}")
    revived = Collector(port)
    try:
        assert sender.post(b'{"after": 1}')
        assert [r.body for r in revived.requests] == [b'{"after": 1}']
    finally:
        revived.close()


def test_connection_closed_by_the_server_is_reopened(collector):
    collector.replies = [(200, {"Connection": "close"})]
    sender = HttpSender(collector.url + "/v1/traces", {}, retry=FAST_RETRY)
    assert sender.post(b"1") and sender.post(b"2")
    assert [r.body for r in collector.requests] == [b"1", b"2"]
    assert collector.requests[0].client_port != collector.requests[1].client_port
