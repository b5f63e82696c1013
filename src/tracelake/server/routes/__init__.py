"""Routes, one module per resource."""
from __future__ import annotations

from starlette.routing import BaseRoute


def all_routes() -> list[BaseRoute]:
    from tracelake.server.routes import assessments, experiments, health, mlflow_artifacts, otlp, traces

    return [*health.routes, *otlp.routes, *experiments.routes, *traces.routes, *assessments.routes,
            *mlflow_artifacts.routes]
