"""decode_request: experiment resolution, grouping per experiment, counts."""
from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tracelake.errors import InvalidRequest
from tests.ingest.conftest import decode, protobuf_body, record


def _spans(resource=None, traces=1):
    def run(tracer):
        for i in range(traces):
            with tracer.start_as_current_span(f"root{i}"):
                with tracer.start_as_current_span(f"child{i}"):
                    pass
    return record(run, resource)


def _two_resources():
    """One request holding two ResourceSpans, as a collector forwarding two apps would send."""
    first = encode_spans(_spans({"service.name": "a", "tracelake.experiment_id": "7"}))
    second = encode_spans(_spans({"service.name": "b", "mlflow.experimentId": '"8"'}, traces=2))
    first.resource_spans.extend(second.resource_spans)
    return first.SerializeToString()


def test_header_experiment_id_wins_over_resource_attributes():
    decoded = decode(protobuf_body(_spans({"tracelake.experiment_id": "7"})), header_experiment_id="42")
    assert [b.experiment_id for b in decoded.batches] == ["42"]


def test_resource_attributes_split_one_request_into_batches_per_experiment():
    decoded = decode(_two_resources())
    assert [(b.experiment_id, len(b.spans)) for b in decoded.batches] == [("7", 2), ("8", 4)]
    assert (decoded.span_count, decoded.trace_count) == (6, 3)


@pytest.mark.parametrize("key", ["tracelake.experiment_id", "mlflow.experimentId", "mlflow.experiment_id"])
def test_each_resource_experiment_key_is_read(key):
    assert decode(protobuf_body(_spans({key: "5"}))).batches[0].experiment_id == "5"


def test_default_experiment_when_nothing_says_otherwise():
    assert decode(protobuf_body(_spans()), default_experiment_id="0").batches[0].experiment_id == "0"


def test_no_experiment_at_all_is_400():
    with pytest.raises(InvalidRequest, match="no experiment"):
        decode(protobuf_body(_spans()), default_experiment_id=None)


def test_experiment_name_from_resource_is_left_for_the_server_to_resolve():
    decoded = decode(protobuf_body(_spans({"tracelake.experiment_name": "chat-bot",
                                           "tracelake.trace.x": "y"})), default_experiment_id="0")
    (batch,) = decoded.batches
    assert (batch.experiment_id, batch.experiment_name) == ("", "chat-bot")


def test_header_name_wins_over_resource_id_and_assigning_updates_traces():
    spans = record(lambda t: t.start_span("r", attributes={"tracelake.trace.tags": '{"k": "v"}'}).end(),
                   {"tracelake.experiment_id": "7"})
    (batch,) = decode(protobuf_body(spans), header_experiment_name="by-header").batches
    assert (batch.experiment_id, batch.experiment_name) == ("", "by-header")
    batch.assign_experiment_id("99")
    assert batch.experiment_id == "99" and [u.experiment_id for u in batch.traces] == ["99"]


def test_resource_id_wins_over_resource_name():
    decoded = decode(protobuf_body(_spans({"tracelake.experiment_id": "3", "tracelake.experiment_name": "n"})))
    assert (decoded.batches[0].experiment_id, decoded.batches[0].experiment_name) == ("3", None)
