"""REST: ``GET /api/tracelake/lake/tables`` and ``POST /api/tracelake/lake/sql``, with and
without auth; and the in-server sync landing OTLP ingest in the lake."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.auth.helpers import ADMIN_PASSWORD, basic, bearer
from tests.lake.helpers import read
from tests.server.otlp_helpers import five_span_trace, protobuf_body, record
from tracelake.auth.grants import GrantStore
from tracelake.auth.store import AuthStore
from tracelake.server import create_app
from tracelake.settings import Settings

TABLES = "/api/tracelake/lake/tables"
SQL = "/api/tracelake/lake/sql"


def _settings(store_uri: str, tmp_path, **changes: object) -> Settings:
    return Settings(store=store_uri, artifacts=str(tmp_path / "artifacts"), lake=str(tmp_path / "lake"),
                    lake_sync_interval_s=0.05).replace(**changes)


def _ingest(client: TestClient, n: int) -> None:
    for _ in range(n):
        r = client.post("/v1/traces", content=protobuf_body(record(five_span_trace)),
                        headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 200, r.text


def _wait_for_rows(client: TestClient, headers: dict[str, str], table: str, rows: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        listed = {t["name"]: t for t in client.get(TABLES, headers=headers).json()["tables"]}
        info = listed.get(f"tracelake.monitoring.{table}")
        if info and info["rows"] == rows and info["lag_s"] == 0 or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


@pytest.fixture
def client(store_uri: str, tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(store_uri, tmp_path)), raise_server_exceptions=False) as c:
        yield c


def test_the_server_syncs_ingest_into_the_lake_and_lists_it(client: TestClient, tmp_path) -> None:
    _ingest(client, 3)
    info = _wait_for_rows(client, {}, "traces", 3)
    assert info["exists"] and info["rows"] == 3 and info["lag_s"] == 0
    assert info["synced_through_seq"] == info["store_seq"]
    assert {"name": "trace_id", "type": "string"} in info["columns"]
    assert read(tmp_path / "lake", "traces").height == 3  # read directly, not through tracelake
    spans = _wait_for_rows(client, {}, "spans", 15)
    assert spans["rows"] == 15
    listed = client.get(TABLES).json()
    assert listed["catalog"] == "tracelake"
    assert [t["name"] for t in listed["tables"]][:3] == [
        "tracelake.monitoring.traces", "tracelake.monitoring.spans", "tracelake.monitoring.assessments"]


def test_sql_answers_columns_and_rows(client: TestClient) -> None:
    _ingest(client, 2)
    _wait_for_rows(client, {}, "spans", 10)
    r = client.post(SQL, json={"sql": "SELECT span_type, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == [{"name": "span_type", "type": "string"}, {"name": "n", "type": "int64"}]
    assert body["rows"] == [["AGENT", 2], ["LLM", 4], ["RETRIEVER", 2], ["TOOL", 2]]
    assert body["truncated"] is False and body["tables"] == ["tracelake.monitoring.spans"]
    r = client.post(SQL, json={"sql": "SELECT request_time, tags FROM traces", "max_rows": 1})
    assert r.json()["truncated"] is True and isinstance(r.json()["rows"][0][1], dict)


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"sql": "DELETE FROM traces"}, 400, "only read-only queries"),
    ({"sql": "SELECT * FROM nowhere"}, 404, "no lake table"),
    ({}, 400, "missing required parameter 'sql'"),
    ({"sql": "SELECT 1", "max_rows": 0}, 400, "max_rows"),
])
def test_sql_refusals_are_clear(client: TestClient, body, status, message) -> None:
    r = client.post(SQL, json=body)
    assert r.status_code == status and message in r.json()["message"]


# -- with auth ----------------------------------------------------------------------------------

@pytest.fixture
def auth_client(store_uri: str, tmp_path) -> Iterator[TestClient]:
    settings = _settings(store_uri, tmp_path, auth=True, admin_password=ADMIN_PASSWORD)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _user(client: TestClient, name: str, grants: list[str]) -> dict[str, str]:
    users = AuthStore(client.app.state.ctx.store.engine)
    users.create_user(name, "password-123")
    for table in grants:
        GrantStore(users).set("user", name, "table", table, "SELECT")
    return bearer(users.create_token(name, "t", None).secret)


def test_with_auth_tables_and_sql_follow_select_grants(auth_client: TestClient) -> None:
    admin = basic("admin", ADMIN_PASSWORD)
    r = auth_client.post("/v1/traces", content=protobuf_body(record(five_span_trace)), headers={
        **admin, "content-type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
    _wait_for_rows(auth_client, admin, "spans", 5)
    reader = _user(auth_client, "reader", ["tracelake.monitoring.traces"])
    nobody = _user(auth_client, "nobody", [])
    assert auth_client.get(TABLES).status_code == 401
    assert [t["name"] for t in auth_client.get(TABLES, headers=reader).json()["tables"]] == [
        "tracelake.monitoring.traces"]
    assert auth_client.get(TABLES, headers=nobody).json()["tables"] == []
    assert len(auth_client.get(TABLES, headers=admin).json()["tables"]) == 4
    assert auth_client.post(SQL, headers=reader, json={"sql": "SELECT count(*) FROM traces"}).json()["rows"] == [[1]]
    r = auth_client.post(SQL, headers=reader, json={"sql": "SELECT count(*) FROM traces JOIN spans USING (trace_id)"})
    assert r.status_code == 403 and "tracelake.monitoring.spans" in r.json()["message"]
    assert auth_client.post(SQL, headers=nobody, json={"sql": "SELECT 1 FROM traces"}).status_code == 403
    assert auth_client.post(SQL, json={"sql": "SELECT 1"}).status_code == 401


def test_the_sync_can_be_turned_off(store_uri: str, tmp_path) -> None:
    app = create_app(_settings(store_uri, tmp_path, lake_sync_interval_s=0.0))
    with TestClient(app) as c:
        _ingest(c, 1)
        assert app.state.lake is not None and not app.state.lake.enabled
        assert c.get(TABLES).json()["tables"][0]["exists"] is False
