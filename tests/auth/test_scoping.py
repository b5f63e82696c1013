"""What a caller sees is scoped to what it may read: trace search, experiment listings, OTLP ingest
by experiment name, and the creator's MANAGE."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.auth.conftest import create_user
from tests.auth.helpers import ADMIN_PASSWORD, auth_settings, basic, bearer, new_trace_hex, otlp_json
from tracelake.server import create_app


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings(store_uri, tmp_path)), raise_server_exceptions=False) as c:
        yield c


ADMIN = basic("admin", ADMIN_PASSWORD)


def _experiment(client: TestClient, name: str) -> str:
    r = client.post("/api/2.0/mlflow/experiments/create", headers=ADMIN, json={"name": name})
    assert r.status_code == 200, r.text
    return r.json()["experiment_id"]


def _ingest(client: TestClient, headers: dict[str, str], resource: dict[str, str] | None = None,
            **target: str) -> tuple[int, str]:
    trace_hex = new_trace_hex()
    extra = {f"x-tracelake-experiment-{k}": v for k, v in target.items()}
    body = otlp_json(trace_hex, resource=resource)
    r = client.post("/v1/traces", content=body, headers={**headers, **extra, "content-type": "application/json"})
    return r.status_code, "tr-" + trace_hex


def _grant(client: TestClient, user: str, experiment_id: str, privilege: str) -> None:
    r = client.post("/api/tracelake/permissions", headers=ADMIN, json={
        "principal_type": "user", "principal": user, "securable_type": "experiment",
        "securable_id": experiment_id, "privilege": privilege})
    assert r.status_code == 200, r.text


def _search(client: TestClient, headers: dict[str, str], experiment_ids: list[str]) -> set[str]:
    r = client.post("/api/3.0/mlflow/traces/search", headers=headers, json={"locations": [
        {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}} for e in experiment_ids]})
    assert r.status_code == 200, r.text
    return {t["trace_id"] for t in r.json()["traces"]}


def test_search_returns_only_traces_of_readable_experiments(client: TestClient) -> None:
    mine, theirs = _experiment(client, "mine"), _experiment(client, "theirs")
    alice, bob = bearer(create_user(client, "alice")), bearer(create_user(client, "bob"))
    _grant(client, "alice", mine, "READ")
    _, in_mine = _ingest(client, ADMIN, id=mine)
    _, in_theirs = _ingest(client, ADMIN, id=theirs)
    assert _search(client, alice, [mine, theirs]) == {in_mine}
    assert _search(client, alice, [theirs]) == set()
    assert _search(client, bob, [mine, theirs]) == set()
    assert _search(client, ADMIN, [mine, theirs]) == {in_mine, in_theirs}


def test_groups_pass_read_on_to_their_members(client: TestClient) -> None:
    shared = _experiment(client, "shared")
    alice = bearer(create_user(client, "alice"))
    _, trace_id = _ingest(client, ADMIN, id=shared)
    assert client.post("/api/tracelake/groups", headers=ADMIN, json={"name": "team"}).status_code == 200
    added = client.post("/api/tracelake/groups/team/members", headers=ADMIN, json={"username": "alice"})
    assert added.status_code == 200
    r = client.post("/api/tracelake/permissions", headers=ADMIN, json={
        "principal_type": "group", "principal": "team", "securable_type": "experiment", "securable_id": shared,
        "privilege": "READ"})
    assert r.status_code == 200
    assert _search(client, alice, [shared]) == {trace_id}


def test_experiment_listings_show_only_readable_experiments(client: TestClient) -> None:
    mine, _ = _experiment(client, "mine"), _experiment(client, "theirs")
    alice = bearer(create_user(client, "alice"))
    _grant(client, "alice", mine, "READ")
    listed = client.get("/api/2.0/mlflow/experiments/search", headers=alice).json()["experiments"]
    assert [e["name"] for e in listed] == ["mine"]
    ui = client.get("/api/tracelake/experiments", headers=alice).json()["experiments"]
    assert [e["name"] for e in ui] == ["mine"]
    everything = client.get("/api/2.0/mlflow/experiments/search", headers=ADMIN).json()["experiments"]
    assert {e["name"] for e in everything} == {"Default", "mine", "theirs"}


def test_the_creator_of_an_experiment_manages_it(client: TestClient) -> None:
    alice = bearer(create_user(client, "alice"))
    r = client.post("/api/2.0/mlflow/experiments/create", headers=alice, json={"name": "alices"})
    experiment_id = r.json()["experiment_id"]
    grants = client.get("/api/tracelake/permissions", headers=alice,
                        params={"securable_type": "experiment", "securable_id": experiment_id}).json()["grants"]
    assert [(g["principal"], g["privilege"]) for g in grants] == [("alice", "MANAGE")]


def test_otlp_by_name_creates_the_experiment_and_its_creator_manages_it(client: TestClient) -> None:
    alice = bearer(create_user(client, "alice"))
    status, trace_id = _ingest(client, alice, name="alice-app")
    assert status == 200
    experiment = client.get("/api/2.0/mlflow/experiments/get-by-name", headers=alice,
                            params={"experiment_name": "alice-app"}).json()["experiment"]
    assert _search(client, alice, [experiment["experiment_id"]]) == {trace_id}
    assert client.post("/api/2.0/mlflow/experiments/delete", headers=alice,
                       json={"experiment_id": experiment["experiment_id"]}).status_code == 200


@pytest.mark.parametrize(("privilege", "status"), [(None, 404), ("READ", 403), ("EDIT", 200), ("MANAGE", 200)])
def test_otlp_ingest_needs_edit_on_the_target_experiment(client: TestClient, privilege: str | None,
                                                         status: int) -> None:
    target = _experiment(client, "target")
    alice = bearer(create_user(client, "alice"))
    if privilege:
        _grant(client, "alice", target, privilege)
    assert _ingest(client, alice, id=target)[0] == status
    assert _ingest(client, alice, resource={"tracelake.experiment_id": target})[0] == status


def test_otlp_by_name_into_someone_elses_experiment_is_refused(client: TestClient) -> None:
    _experiment(client, "taken")
    alice = bearer(create_user(client, "alice"))
    assert _ingest(client, alice, name="taken")[0] == 403


def test_count_of_an_unreadable_experiment_is_not_found(client: TestClient) -> None:
    hidden = _experiment(client, "hidden")
    alice = bearer(create_user(client, "alice"))
    r = client.post("/api/3.0/mlflow/traces/count", headers=alice, json={"experiment_ids": [hidden]})
    assert r.status_code == 404
    missing = client.post("/api/3.0/mlflow/traces/count", headers=alice, json={"experiment_ids": ["999"]})
    assert missing.json()["message"].replace("999", hidden) == r.json()["message"]
