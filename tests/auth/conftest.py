"""Auth fixtures.

``auth_client``: the app with auth on over the ``store_uri`` database (SQLite and PostgreSQL).
``world``: one app per database kind for the whole permission matrix — users for every role,
an experiment created by its manager (so the manager holds MANAGE by being its creator), READ
and EDIT granted to the reader and editor, a trace and an assessment logged by the editor.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from tests.auth.helpers import ADMIN_PASSWORD, USER_PASSWORD, auth_settings, basic, bearer, new_trace_hex, otlp_json
from tests.conftest import _create_pg_database, _drop_pg_database
from tracelake.server import create_app

ROLES = ("anonymous", "reader", "editor", "manager", "other", "admin")


@pytest.fixture
def auth_client(store_uri: str, tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings(store_uri, tmp_path)), raise_server_exceptions=False) as client:
        yield client


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    experiment_id: str = ""
    experiment_name: str = "matrix"
    trace_id: str = ""
    assessment_id: str = ""

    def headers(self, role: str) -> dict[str, str]:
        return bearer(self.tokens[role]) if role in self.tokens else {}

    def as_admin(self) -> dict[str, str]:
        return self.headers("admin")


def create_user(client: TestClient, username: str, is_admin: bool = False) -> str:
    """Create a user (as admin) and return a fresh token of theirs."""
    admin = basic("admin", ADMIN_PASSWORD)
    if username != "admin":
        r = client.post("/api/tracelake/users", headers=admin,
                        json={"username": username, "password": USER_PASSWORD, "is_admin": is_admin})
        assert r.status_code == 200, r.text
    r = client.post("/api/tracelake/tokens", headers=admin, json={"name": "tests", "username": username})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def build_world(client: TestClient) -> World:
    world = World(client)
    for role in ROLES[1:]:
        world.tokens[role] = create_user(client, role)
    r = client.post("/api/2.0/mlflow/experiments/create", headers=world.headers("manager"),
                    json={"name": world.experiment_name})
    assert r.status_code == 200, r.text
    world.experiment_id = r.json()["experiment_id"]
    for role, privilege in (("reader", "READ"), ("editor", "EDIT")):
        r = client.post("/api/tracelake/permissions", headers=world.headers("manager"), json={
            "principal_type": "user", "principal": role, "securable_type": "experiment",
            "securable_id": world.experiment_id, "privilege": privilege})
        assert r.status_code == 200, r.text
    world.trace_id = log_trace(world, "editor")
    r = client.post(f"/api/3.0/mlflow/traces/{world.trace_id}/assessments", headers=world.headers("editor"),
                    json={"assessment": feedback(world.trace_id)})
    assert r.status_code == 200, r.text
    world.assessment_id = r.json()["assessment"]["assessment_id"]
    return world


def log_trace(world: World, role: str) -> str:
    trace_hex = new_trace_hex()
    r = world.client.post("/v1/traces", content=otlp_json(trace_hex), headers={
        **world.headers(role), "content-type": "application/json", "x-tracelake-experiment-id": world.experiment_id})
    assert r.status_code == 200, r.text
    return "tr-" + trace_hex


def feedback(trace_id: str) -> dict:
    return {"trace_id": trace_id, "assessment_name": "quality", "feedback": {"value": "good"},
            "source": {"source_type": "HUMAN", "source_id": "tests"}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("world")
    admin_dsn = dsn = None
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp}/tracelake.db"
    else:
        admin_dsn = request.getfixturevalue("pg_admin_dsn")
        uri = dsn = _create_pg_database(admin_dsn)
    try:
        with TestClient(create_app(auth_settings(uri, tmp)), raise_server_exceptions=False) as client:
            yield build_world(client)
    finally:
        if dsn is not None and admin_dsn is not None:
            _drop_pg_database(admin_dsn, dsn)
