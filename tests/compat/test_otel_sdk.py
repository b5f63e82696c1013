"""The OpenTelemetry SDK exporting OTLP/HTTP (protobuf, gzip'd protobuf, JSON) to a live server."""
from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.compat.conftest import LiveServer
from tests.compat.otel_helpers import (
    ENCODINGS,
    assert_span_matches,
    exporter_for,
    mlflow_trace_id,
    provider_for,
    span_hex_id,
)


def checkout(tracer) -> None:
    """A SERVER root with a CLIENT child (typed attributes, an event) and a child that raises."""
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER, attributes={
            "http.request.method": "POST", "http.response.status_code": 200, "url.path": "/checkout"}) as root:
        root.add_event("cart.loaded", {"items": 3, "currency": "EUR"})
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT, attributes={
                "db.system": "postgresql", "db.rows": 3, "ratio": 0.5, "cached": False,
                "tables": ("carts", "items"), "ids": (1, 2, 3)}):
            pass
        try:
            with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT):
                raise ValueError("card declined")
        except ValueError:
            pass
        root.set_status(Status(StatusCode.OK))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_spans_land_as_one_trace_with_tree_timing_status_events_attributes(
        live_server: LiveServer, mlflow_reader, encoding: str) -> None:
    experiment_id = live_server.create_experiment(f"otel-{encoding}")
    provider, sent = provider_for(exporter_for(encoding, live_server.url, {"x-mlflow-experiment-id": experiment_id}))
    checkout(provider.get_tracer("compat"))
    provider.shutdown()

    spans = {s.name: s for s in sent.get_finished_spans()}
    trace_id = mlflow_trace_id(spans["POST /checkout"])
    got = mlflow_reader.get_trace(trace_id)
    assert got.info.experiment_id == experiment_id
    assert got.info.state == "OK"
    named = mlflow_reader.search_traces(locations=[experiment_id], filter_string="trace.name = 'POST /checkout'")
    assert [t.info.trace_id for t in named] == [trace_id]
    got_spans = {s.name: s for s in got.data.spans}
    assert sorted(got_spans) == sorted(spans)
    for name, span in spans.items():
        assert_span_matches(span, got_spans[name])
    charge = got_spans["charge"]
    assert charge.status.status_code.value == "ERROR"
    assert charge.events[0].name == "exception"
    assert charge.events[0].attributes["exception.type"] == "ValueError"

    stored = {s.name: s for s in live_server.store.get_trace(trace_id).spans}
    assert stored["POST /checkout"].kind == "SERVER"
    assert stored["db.query"].kind == "CLIENT"
    assert stored["db.query"].parent_span_id == span_hex_id(spans["POST /checkout"])


def test_failed_root_makes_an_error_trace(live_server: LiveServer, mlflow_reader) -> None:
    experiment_id = live_server.create_experiment("otel-error")
    provider, sent = provider_for(exporter_for("protobuf", live_server.url, {"x-mlflow-experiment-id": experiment_id}))
    tracer = provider.get_tracer("compat")
    with pytest.raises(RuntimeError):
        with tracer.start_as_current_span("job"):
            raise RuntimeError("job failed")
    provider.shutdown()
    (job,) = sent.get_finished_spans()
    got = mlflow_reader.get_trace(mlflow_trace_id(job))
    assert got.info.state == "ERROR"
    assert_span_matches(job, got.data.spans[0])


def test_batched_spans_from_many_traces(live_server: LiveServer, mlflow_reader) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    experiment_id = live_server.create_experiment("otel-batch")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        exporter_for("protobuf", live_server.url, {"x-mlflow-experiment-id": experiment_id}), max_export_batch_size=7))
    tracer = provider.get_tracer("compat")
    for i in range(20):
        with tracer.start_as_current_span(f"request-{i}"):
            with tracer.start_as_current_span("work"):
                pass
    provider.shutdown()
    found = mlflow_reader.search_traces(locations=[experiment_id], max_results=100)
    assert len(found) == 20
    assert all(len(t.data.spans) == 2 for t in found)
    roots = {next(s.name for s in t.data.spans if s.parent_id is None) for t in found}
    assert roots == {f"request-{i}" for i in range(20)}


@pytest.mark.parametrize("by", ["id", "name"])
def test_environment_variables_alone_point_the_exporter_at_tracelake(
        live_server: LiveServer, mlflow_reader, monkeypatch: pytest.MonkeyPatch, by: str) -> None:
    """The documented switch: two OTEL_* variables, no code change (a new name creates the experiment)."""
    if by == "id":
        experiment_id = live_server.create_experiment("otel-env")
        header = f"x-mlflow-experiment-id={experiment_id}"
    else:
        header = "x-tracelake-experiment-name=otel%20by%20name"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{live_server.url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", header)
    provider, sent = provider_for(OTLPSpanExporter())
    with provider.get_tracer("compat").start_as_current_span("from-env"):
        pass
    provider.shutdown()
    (span,) = sent.get_finished_spans()
    if by == "name":
        experiment_id = mlflow_reader.get_experiment_by_name("otel by name").experiment_id
    assert mlflow_reader.get_trace(mlflow_trace_id(span)).info.experiment_id == experiment_id


def test_without_an_experiment_header_spans_go_to_the_default_experiment(
        live_server: LiveServer, mlflow_reader) -> None:
    provider, sent = provider_for(exporter_for("protobuf", live_server.url))
    with provider.get_tracer("compat").start_as_current_span("no-header"):
        pass
    provider.shutdown()
    (span,) = sent.get_finished_spans()
    assert mlflow_reader.get_trace(mlflow_trace_id(span)).info.experiment_id == "0"
