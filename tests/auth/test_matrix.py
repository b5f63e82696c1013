"""The permission matrix: (anonymous, reader, editor, manager, other user, admin) × every route
family → the status each must get.

401: no credentials. 403: the caller can see the experiment but lacks the privilege (or is not an
admin). 404: the caller cannot even read the experiment, so it must not learn that it exists.
Pages answer an anonymous caller with a redirect to the sign-in page (303) instead of 401.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.auth.conftest import ROLES, World, feedback, log_trace
from tests.auth.helpers import new_trace_hex, otlp_json

#            anonymous reader editor manager other admin
PUBLIC = (200, 200, 200, 200, 200, 200)
SIGNED_IN = (401, 200, 200, 200, 200, 200)
READ = (401, 200, 200, 200, 404, 200)
EDIT = (401, 403, 200, 200, 404, 200)
MANAGE = (401, 403, 403, 200, 404, 200)
ADMIN = (401, 403, 403, 403, 403, 200)


def page(expected: tuple[int, ...]) -> tuple[int, ...]:
    """The same, for a page: anonymous callers are sent to /login."""
    return (303, *expected[1:])


Call = Callable[[World, str], httpx.Response]


@dataclass(frozen=True)
class Family:
    name: str
    call: Call
    expected: tuple[int, ...]


def _get(path: str, **params: object) -> Call:
    def call(w: World, role: str) -> httpx.Response:
        resolved = {k: (v(w) if callable(v) else v) for k, v in params.items()}
        return w.client.get(path.format(w=w), params=resolved, headers=w.headers(role), follow_redirects=False)
    return call


def _send(method: str, path: str, body: Callable[[World, str], object] | None = None) -> Call:
    def call(w: World, role: str) -> httpx.Response:
        content = orjson.dumps(body(w, role)) if body else b""
        return w.client.request(method, path.format(w=w), content=content, follow_redirects=False,
                                headers={**w.headers(role), "content-type": "application/json"})
    return call


def _otlp(w: World, role: str) -> httpx.Response:
    return w.client.post("/v1/traces", content=otlp_json(new_trace_hex()), headers={
        **w.headers(role), "content-type": "application/json", "x-tracelake-experiment-id": w.experiment_id})


def _start_trace(w: World, role: str) -> dict:
    return {"trace": {"trace_info": {
        "trace_id": "tr-" + new_trace_hex(), "request_time": "2026-01-01T00:00:00Z", "state": "OK",
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": w.experiment_id}}}}}


def _delete_experiment(w: World, role: str) -> httpx.Response:
    r = _send("POST", "/api/2.0/mlflow/experiments/delete", lambda w, _: {"experiment_id": w.experiment_id})(w, role)
    if r.status_code == 200:  # put the world back for the next call
        restored = w.client.post("/api/2.0/mlflow/experiments/restore", headers=w.as_admin(),
                                 json={"experiment_id": w.experiment_id})
        assert restored.status_code == 200, restored.text
    return r


def _delete_traces(w: World, role: str) -> httpx.Response:
    victim = log_trace(w, "admin")
    return _send("POST", "/api/2.0/mlflow/traces/delete-traces",
                 lambda w, _: {"experiment_id": w.experiment_id, "trace_ids": [victim]})(w, role)


def _delete_tag(w: World, role: str) -> httpx.Response:
    set_tag = w.client.patch(f"/api/3.0/mlflow/traces/{w.trace_id}/tags", headers=w.as_admin(),
                             json={"key": "doomed", "value": "x"})
    assert set_tag.status_code == 200, set_tag.text
    return _send("DELETE", "/api/3.0/mlflow/traces/{w.trace_id}/tags", lambda w, _: {"key": "doomed"})(w, role)


def _delete_masking_rule(path: str) -> Call:
    """Delete a rule the admin just added under ``path`` (global, or the world's experiment's)."""
    def call(w: World, role: str) -> httpx.Response:
        created = w.client.post(path.format(w=w), headers=w.as_admin(),
                                json={"kind": "regex", "pattern": "never-matches-[0-9]{40}"})
        assert created.status_code == 200, created.text
        return _send("DELETE", f"/api/tracelake/masking-rules/{created.json()['rule_id']}")(w, role)
    return call


def _delete_assessment(w: World, role: str) -> httpx.Response:
    created = w.client.post(f"/api/3.0/mlflow/traces/{w.trace_id}/assessments", headers=w.as_admin(),
                            json={"assessment": feedback(w.trace_id)})
    assert created.status_code == 200, created.text
    victim = created.json()["assessment"]["assessment_id"]
    return _send("DELETE", f"/api/3.0/mlflow/traces/{{w.trace_id}}/assessments/{victim}")(w, role)


_EXP = "/api/2.0/mlflow/experiments"
_TRACES = "/api/3.0/mlflow/traces"
_ASSESSMENT = _TRACES + "/{w.trace_id}/assessments/{w.assessment_id}"
_TRACES_JSON = "/api/2.0/mlflow-artifacts/artifacts/{w.experiment_id}/traces/{w.trace_id}/artifacts/traces.json"
_PERMISSION = {"securable_type": "experiment", "securable_id": lambda w: w.experiment_id}
_TL = "/api/tracelake"

FAMILIES = [
    # public
    Family("health", _get("/health"), PUBLIC),
    Family("version", _get("/version"), PUBLIC),
    Family("tracelake version", _get(f"{_TL}/version"), PUBLIC),
    Family("login page", _get("/login"), PUBLIC),
    # ingest
    Family("otlp ingest", _otlp, EDIT),
    Family("start trace (v3)", _send("POST", _TRACES, _start_trace), EDIT),
    Family("artifact traces.json put", _send("PUT", _TRACES_JSON, lambda w, r: {"spans": []}), EDIT),
    # experiments
    Family("experiment create", _send("POST", f"{_EXP}/create", lambda w, r: {"name": f"own-{r}-{new_trace_hex()}"}),
           SIGNED_IN),
    Family("experiment search", _get(f"{_EXP}/search"), SIGNED_IN),
    Family("experiment get", _get(f"{_EXP}/get", experiment_id=lambda w: w.experiment_id), READ),
    Family("experiment get-by-name", _get(f"{_EXP}/get-by-name", experiment_name=lambda w: w.experiment_name), READ),
    Family("experiment set tag", _send("POST", f"{_EXP}/set-experiment-tag",
                                       lambda w, r: {"experiment_id": w.experiment_id, "key": "k", "value": r}), EDIT),
    Family("experiment rename", _send("POST", f"{_EXP}/update",
                                      lambda w, r: {"experiment_id": w.experiment_id}), EDIT),
    Family("experiment delete", _delete_experiment, MANAGE),
    # traces
    Family("trace search", _send("POST", f"{_TRACES}/search",
                                 lambda w, r: {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
                                     "experiment_id": w.experiment_id}}]}), SIGNED_IN),
    Family("trace count", _send("POST", f"{_TRACES}/count", lambda w, r: {"experiment_ids": [w.experiment_id]}),
           READ),
    Family("trace info", _get(_TRACES + "/{w.trace_id}"), READ),
    Family("trace get", _get(f"{_TRACES}/get", trace_id=lambda w: w.trace_id), READ),
    Family("trace batchGet", _get(f"{_TRACES}/batchGet", trace_ids=lambda w: [w.trace_id]), READ),
    Family("trace set tag", _send("PATCH", _TRACES + "/{w.trace_id}/tags", lambda w, r: {"key": "k", "value": r}),
           EDIT),
    Family("trace delete tag", _delete_tag, EDIT),
    Family("trace delete", _delete_traces, MANAGE),
    Family("artifact traces.json get", _get(_TRACES_JSON), READ),
    Family("server info", _get("/api/3.0/mlflow/server-info"), SIGNED_IN),
    # assessments
    Family("assessment get", _get(_ASSESSMENT), READ),
    Family("assessment create", _send("POST", _TRACES + "/{w.trace_id}/assessments",
                                      lambda w, r: {"assessment": feedback(w.trace_id)}), EDIT),
    Family("assessment update", _send("PATCH", _ASSESSMENT, lambda w, r: {
        "assessment": {"rationale": r}, "update_mask": "rationale"}), EDIT),
    Family("assessment delete", _delete_assessment, EDIT),
    # web UI
    Family("ui experiments page", _get("/"), page(SIGNED_IN)),
    Family("ui traces page", _get("/experiments/{w.experiment_id}"), page(READ)),
    Family("ui trace page", _get("/experiments/{w.experiment_id}/traces/{w.trace_id}"), page(READ)),
    Family("ui sessions page", _get("/experiments/{w.experiment_id}/sessions"), page(READ)),
    Family("ui monitoring page", _get("/experiments/{w.experiment_id}/monitoring"), page(READ)),
    Family("ui api experiments", _get(f"{_TL}/experiments"), SIGNED_IN),
    Family("ui api traces", _get(_TL + "/experiments/{w.experiment_id}/traces"), READ),
    Family("ui api sessions", _get(_TL + "/experiments/{w.experiment_id}/sessions"), READ),
    Family("ui api metrics", _get(_TL + "/experiments/{w.experiment_id}/metrics"), READ),
    Family("ui api trace", _get(_TL + "/traces/{w.trace_id}"), READ),
    Family("ui api export", _send("POST", f"{_TL}/traces/export", lambda w, r: {"trace_ids": [w.trace_id]}), READ),
    # masking rules: global ones are the admins'; an experiment's are read by its readers, changed by its managers
    Family("global masking rules", _get(f"{_TL}/masking-rules"), ADMIN),
    Family("global masking rule add", _send("POST", f"{_TL}/masking-rules", lambda w, r: {
        "kind": "regex", "pattern": "never-matches-[0-9]{40}"}), ADMIN),
    Family("global masking rule delete", _delete_masking_rule(f"{_TL}/masking-rules"), ADMIN),
    Family("experiment masking rules", _get(_TL + "/experiments/{w.experiment_id}/masking-rules"), READ),
    Family("experiment masking rule add", _send("POST", _TL + "/experiments/{w.experiment_id}/masking-rules",
                                                lambda w, r: {"kind": "regex", "pattern": "never-matches-[0-9]{40}"}),
           MANAGE),
    Family("experiment masking rule delete",
           _delete_masking_rule(_TL + "/experiments/{w.experiment_id}/masking-rules"), MANAGE),
    # users, groups, tokens, permissions
    Family("me", _get(f"{_TL}/users/me"), SIGNED_IN),
    Family("own tokens", _get(f"{_TL}/tokens"), SIGNED_IN),
    Family("users list", _get(f"{_TL}/users"), ADMIN),
    Family("user get", _get(f"{_TL}/users/reader"), ADMIN),
    Family("groups list", _get(f"{_TL}/groups"), ADMIN),
    Family("experiment grants list", _get(f"{_TL}/permissions", **_PERMISSION), MANAGE),
    Family("experiment grant", _send("POST", f"{_TL}/permissions", lambda w, r: {
        "principal_type": "user", "principal": "reader", "securable_type": "experiment",
        "securable_id": w.experiment_id, "privilege": "READ"}), MANAGE),
    Family("table grant", _send("POST", f"{_TL}/permissions", lambda w, r: {
        "principal_type": "user", "principal": "reader", "securable_type": "table", "securable_id": "main.traces",
        "privilege": "SELECT"}), ADMIN),
    Family("account page", _get("/account"), page(SIGNED_IN)),
    Family("admin page", _get("/admin"), page(ADMIN)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_permission_matrix(world: World, family: Family, role: str) -> None:
    response = family.call(world, role)
    expected = family.expected[ROLES.index(role)]
    assert response.status_code == expected, f"{family.name} as {role}: {response.status_code} {response.text[:300]}"
    if expected == 401:
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    if expected == 404 and role == "other":
        # worded exactly as for something that does not exist: nothing tells it apart
        if family.expected[0] == 303:  # a page: the web UI's HTML 404 page, as for a missing experiment
            assert response.headers["content-type"].startswith("text/html")
            assert "404 · Not found" in response.text
        else:
            assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "permission" not in response.text.lower()
