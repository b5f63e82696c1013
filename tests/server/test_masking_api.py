"""Masking rules over the REST API, applied at ingest before storage."""
from __future__ import annotations

import json

from tests.server.otlp_helpers import protobuf_body, record

PB = {"content-type": "application/x-protobuf"}


def _trace_with_secret(tracer):
    with tracer.start_as_current_span("agent", attributes={
            "mlflow.spanType": '"AGENT"',
            "mlflow.spanInputs": json.dumps({"q": "mail me at alice@example.com"}),
            "mlflow.spanOutputs": json.dumps("ok"),
            "api_key": "sk-123"}):
        pass


def _stored_span(client, spans):
    trace_id = "tr-" + format(spans[0].context.trace_id, "032x")
    got = client.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id}).json()["trace"]["spans"][0]
    return {a["key"]: a["value"] for a in got["attributes"]}


def test_experiment_rules_mask_inputs_and_attributes(client):
    assert client.post("/api/tracelake/experiments/0/masking-rules",
                       json={"kind": "regex", "pattern": r"[\w.]+@[\w.]+", "replacement": "<email>"}).status_code == 200
    assert client.post("/api/tracelake/experiments/0/masking-rules",
                       json={"kind": "attribute_key", "pattern": "api_key"}).status_code == 200
    spans = record(_trace_with_secret)
    assert client.post("/v1/traces", content=protobuf_body(spans), headers=PB).status_code == 200
    attrs = _stored_span(client, spans)
    assert "alice@example.com" not in json.dumps(attrs)
    assert attrs["mlflow.spanInputs"]["kvlist_value"]["values"][0]["value"]["string_value"] == "mail me at <email>"
    assert attrs["api_key"]["string_value"] == "[MASKED]"
    rules = client.get("/api/tracelake/experiments/0/masking-rules").json()["rules"]
    assert [r["kind"] for r in rules] == ["regex", "attribute_key"]


def test_rules_of_another_experiment_do_not_apply(client):
    other = client.post("/api/2.0/mlflow/experiments/create", json={"name": "other"}).json()["experiment_id"]
    client.post(f"/api/tracelake/experiments/{other}/masking-rules", json={"kind": "regex", "pattern": "alice"})
    spans = record(_trace_with_secret)
    client.post("/v1/traces", content=protobuf_body(spans), headers=PB)
    assert "alice@example.com" in json.dumps(_stored_span(client, spans))


def test_global_rule_applies_everywhere_and_can_be_deleted(client):
    rule_id = client.post("/api/tracelake/masking-rules", json={"kind": "regex", "pattern": "alice"}).json()["rule_id"]
    assert [r["rule_id"] for r in client.get("/api/tracelake/masking-rules").json()["rules"]] == [rule_id]
    first = record(_trace_with_secret)
    client.post("/v1/traces", content=protobuf_body(first), headers=PB)
    assert "alice" not in json.dumps(_stored_span(client, first))
    assert client.delete(f"/api/tracelake/masking-rules/{rule_id}").status_code == 200
    second = record(_trace_with_secret)
    client.post("/v1/traces", content=protobuf_body(second), headers=PB)
    assert "alice@example.com" in json.dumps(_stored_span(client, second))


def test_bad_rules_are_400_and_unknown_ones_404(client):
    r = client.post("/api/tracelake/masking-rules", json={"kind": "regex", "pattern": "(unclosed"})
    assert r.status_code == 400 and r.json()["message"]
    assert client.post("/api/tracelake/masking-rules", json={"kind": "shout", "pattern": "x"}).status_code == 400
    assert client.post("/api/tracelake/masking-rules", json={"kind": "regex"}).status_code == 400
    assert client.post("/api/tracelake/experiments/999/masking-rules",
                       json={"kind": "regex", "pattern": "x"}).status_code == 404
    assert client.delete("/api/tracelake/masking-rules/12345").status_code == 404


def test_experiment_list_does_not_show_global_rules(client):
    client.post("/api/tracelake/masking-rules", json={"kind": "regex", "pattern": "secret-global"})
    client.post("/api/tracelake/experiments/0/masking-rules", json={"kind": "regex", "pattern": "mine"})
    patterns = [r["pattern"] for r in client.get("/api/tracelake/experiments/0/masking-rules").json()["rules"]]
    assert patterns == ["mine"]
