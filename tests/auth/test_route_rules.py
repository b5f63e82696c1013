"""Every route of the app is declared in tracelake.server.permissions, in one place."""
from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.auth.helpers import ADMIN_PASSWORD, auth_settings, basic
from tracelake.server import create_app
from tracelake.server.permissions import RULES, Access, route_keys
from tracelake.settings import Settings


def _app(tmp_path: Path, auth: bool = False) -> Starlette:
    settings = Settings(store=f"sqlite:///{tmp_path}/t.db", artifacts=str(tmp_path / "a"), lake=str(tmp_path / "l"))
    return create_app(auth_settings(settings.store, tmp_path) if auth else settings)


def test_every_route_of_the_app_has_a_rule(tmp_path: Path) -> None:
    keys = route_keys(_app(tmp_path).routes)
    undeclared = [f"{method} {path}" for path, method in keys if (path, method) not in RULES]
    assert not undeclared, ("routes without a permission rule; declare them in "
                            f"src/tracelake/server/permissions.py: {undeclared}")


def test_every_rule_names_a_route_that_exists(tmp_path: Path) -> None:
    keys = set(route_keys(_app(tmp_path).routes))
    assert [k for k in RULES if k not in keys] == []


def test_only_probes_sign_in_and_static_files_are_public() -> None:
    public = sorted({path for (path, _), rule in RULES.items() if rule.access is Access.PUBLIC})
    assert public == ["/api/tracelake/version", "/health", "/login", "/static/{path:path}", "/version"]


def test_a_route_without_a_rule_is_refused(tmp_path: Path) -> None:
    app = _app(tmp_path, auth=True)
    app.router.routes.append(Route("/undeclared", lambda request: PlainTextResponse("secret"), methods=["GET"]))
    with TestClient(app) as client:
        response = client.get("/undeclared", headers=basic("admin", ADMIN_PASSWORD))
    assert response.status_code == 403
    assert "no permission rule" in response.json()["message"]


def test_an_unknown_path_is_a_plain_404_even_anonymously(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, auth=True)) as client:
        assert client.get("/api/2.0/nothing/here").status_code == 404
