"""Trace query API: search with filters, paging, count, tags, assessments, delete."""
from __future__ import annotations

from tests.server.otlp_helpers import five_span_trace, protobuf_body, record

PB = {"content-type": "application/x-protobuf"}
T = "/api/3.0/mlflow/traces"


def _ingest(client, n=1, error=False, name="agent"):
    ids = []
    for _ in range(n):
        spans = record(lambda t: five_span_trace(t, name=name, error=error))
        assert client.post("/v1/traces", content=protobuf_body(spans), headers=PB).status_code == 200
        ids.append("tr-" + format(spans[0].context.trace_id, "032x"))
    return ids


def _search(client, **body):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}], **body}
    return client.post(f"{T}/search", json=body)


def test_filter_by_status_and_name(client):
    _ingest(client, 2)
    bad = _ingest(client, 1, error=True, name="failing")
    r = _search(client, filter="attributes.status = 'ERROR'")
    assert r.status_code == 200, r.text
    assert [t["trace_id"] for t in r.json()["traces"]] == bad
    r = _search(client, filter="trace.name = 'failing'")
    assert [t["trace_id"] for t in r.json()["traces"]] == bad


def test_bad_filter_is_400_pointing_at_token(client):
    r = _search(client, filter="attributes.status = 'OK' AND bogus.thing = 1")
    assert r.status_code == 400
    assert "bogus" in r.json()["message"]


def test_paging_visits_every_trace_once(client):
    ids = set(_ingest(client, 7))
    seen, token = [], None
    while True:
        r = _search(client, max_results=3, **({"page_token": token} if token else {}))
        page = r.json()
        seen += [t["trace_id"] for t in page["traces"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == 7 and set(seen) == ids


def test_count(client):
    _ingest(client, 3)
    _ingest(client, 1, error=True)
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}],
            "filter": "trace.status = 'ERROR'"}
    assert client.post(f"{T}/count", json=body).json() == {"count": 1}


def test_tags_set_and_delete(client):
    (trace_id,) = _ingest(client)
    assert client.patch(f"/api/2.0/mlflow/traces/{trace_id}/tags", json={"key": "env", "value": "prod"}).status_code == 200
    assert _search(client, filter="tags.env = 'prod'").json()["traces"][0]["tags"]["env"] == "prod"
    assert client.request("DELETE", f"/api/2.0/mlflow/traces/{trace_id}/tags", params={"key": "env"}).status_code == 200
    assert _search(client, filter="tags.env = 'prod'").json().get("traces", []) == []


def test_assessment_lifecycle(client):
    (trace_id,) = _ingest(client)
    r = client.post(f"{T}/{trace_id}/assessments", json={"assessment": {
        "assessment_name": "correct", "trace_id": trace_id, "source": {"source_type": "HUMAN", "source_id": "bob"},
        "feedback": {"value": True}, "rationale": "looks right"}})
    assert r.status_code == 200, r.text
    a = r.json()["assessment"]
    assessment_id = a["assessment_id"]
    assert a["feedback"]["value"] is True
    r = client.patch(f"{T}/{trace_id}/assessments/{assessment_id}",
                     json={"assessment": {"rationale": "on second look, no", "feedback": {"value": False}},
                           "update_mask": "rationale,feedback"})
    assert r.status_code == 200, r.text
    got = client.get(f"{T}/{trace_id}/assessments/{assessment_id}").json()["assessment"]
    assert got["feedback"]["value"] is False and got["rationale"] == "on second look, no"
    info = client.get(f"{T}/{trace_id}").json()["trace"]["trace_info"]
    assert [x["assessment_id"] for x in info["assessments"]] == [assessment_id]
    assert client.delete(f"{T}/{trace_id}/assessments/{assessment_id}").status_code == 200
    assert client.get(f"{T}/{trace_id}/assessments/{assessment_id}").status_code == 404


def test_delete_traces_by_ids_and_by_time(client):
    ids = _ingest(client, 3)
    r = client.post(f"{T}/delete-traces", json={"experiment_id": "0", "trace_ids": ids[:1]})
    assert r.json() == {"traces_deleted": 1}
    r = client.post(f"{T}/delete-traces", json={"experiment_id": "0", "max_timestamp_millis": 2**62})
    assert r.json() == {"traces_deleted": 2}
    assert _search(client).json().get("traces", []) == []


def test_get_missing_trace_is_404_and_bad_id_is_400(client):
    assert client.get(f"{T}/get", params={"trace_id": "tr-" + "0" * 32}).status_code == 404
    assert client.get(f"{T}/get", params={"trace_id": "not-a-trace"}).status_code == 400


def test_search_needs_an_experiment(client):
    r = client.post(f"{T}/search", json={})
    assert r.status_code == 400
