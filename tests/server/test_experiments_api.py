"""Experiments over the MLflow-compatible REST paths."""
from __future__ import annotations

P = "/api/2.0/mlflow/experiments"


def test_default_experiment_exists(client):
    r = client.get(f"{P}/get", params={"experiment_id": "0"})
    assert r.status_code == 200
    assert r.json()["experiment"]["name"] == "Default"


def test_create_get_and_get_by_name(client):
    r = client.post(f"{P}/create", json={"name": "chat-bot", "tags": [{"key": "team", "value": "ml"}]})
    assert r.status_code == 200, r.text
    experiment_id = r.json()["experiment_id"]
    got = client.get(f"{P}/get", params={"experiment_id": experiment_id}).json()["experiment"]
    assert got["name"] == "chat-bot"
    assert {"key": "team", "value": "ml"} in got["tags"]
    by_name = client.get(f"{P}/get-by-name", params={"experiment_name": "chat-bot"}).json()["experiment"]
    assert by_name["experiment_id"] == experiment_id


def test_duplicate_name_is_rejected(client):
    client.post(f"{P}/create", json={"name": "dup"})
    r = client.post(f"{P}/create", json={"name": "dup"})
    assert r.status_code == 400
    assert r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_missing_experiment_is_404_with_mlflow_error_code(client):
    r = client.get(f"{P}/get-by-name", params={"experiment_name": "nope"})
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert client.get(f"{P}/get", params={"experiment_id": "12345"}).status_code == 404


def test_create_without_name_is_400(client):
    r = client.post(f"{P}/create", json={})
    assert r.status_code == 400
    assert "name" in r.json()["message"]


def test_rename_delete_restore_and_search_views(client):
    experiment_id = client.post(f"{P}/create", json={"name": "a"}).json()["experiment_id"]
    assert client.post(f"{P}/update", json={"experiment_id": experiment_id, "new_name": "b"}).status_code == 200
    assert client.get(f"{P}/get", params={"experiment_id": experiment_id}).json()["experiment"]["name"] == "b"
    assert client.post(f"{P}/delete", json={"experiment_id": experiment_id}).status_code == 200
    active = {e["name"] for e in client.post(f"{P}/search", json={}).json()["experiments"]}
    deleted = {e["name"] for e in client.post(f"{P}/search", json={"view_type": "DELETED_ONLY"}).json()["experiments"]}
    assert "b" not in active and "b" in deleted
    assert client.post(f"{P}/restore", json={"experiment_id": experiment_id}).status_code == 200
    active = {e["name"] for e in client.post(f"{P}/search", json={}).json()["experiments"]}
    assert "b" in active


def test_search_pages(client):
    for i in range(5):
        client.post(f"{P}/create", json={"name": f"e{i}"})
    seen, token = [], None
    while True:
        body = {"max_results": 2, **({"page_token": token} if token else {})}
        page = client.post(f"{P}/search", json=body).json()
        seen += [e["name"] for e in page["experiments"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(["Default", "e0", "e1", "e2", "e3", "e4"])


def test_bad_json_body_is_400(client):
    r = client.post(f"{P}/create", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_unknown_endpoint_is_404_json(client):
    r = client.get("/api/2.0/mlflow/nothing-here")
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
