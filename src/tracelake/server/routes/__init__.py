"""Routes, one module per resource."""
from __future__ import annotations

from starlette.routing import BaseRoute


def all_routes() -> list[BaseRoute]:
    from tracelake.server.routes import assessments, experiments, health, mlflow_artifacts, otlp, traces

    return [*health.routes, *otlp.routes, *experiments.routes, *traces.routes, *assessments.routes,
            *__import__("tracelake.server.routes.auth", fromlist=["routes"]).routes,  # users, tokens, sign-in
            *__import__("tracelake.server.routes.lake", fromlist=["routes"]).routes,  # lake tables + SQL
            *__import__("tracelake.server.routes.ui", fromlist=["routes"]).routes,  # web UI + /api/tracelake
            *__import__("tracelake.server.routes.masking", fromlist=["routes"]).routes,  # masking rules
            *__import__("tracelake.server.routes.native", fromlist=["routes"]).routes,  # SDK's native ingest
            *mlflow_artifacts.routes]
