"""Run by test_mlflow_client_auth.py in a subprocess: the real mlflow client, configured only
through its environment (MLFLOW_TRACKING_URI + MLFLOW_TRACKING_TOKEN, or _USERNAME/_PASSWORD).

``log EXPERIMENT``: trace a small agent into EXPERIMENT, then search it back; prints JSON.
``probe``: one authenticated call; prints the error code the client raised (or OK).
"""
from __future__ import annotations

import json
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


@mlflow.trace(span_type="AGENT")
def agent(question: str) -> str:
    return tool(question.upper())


@mlflow.trace(span_type="TOOL")
def tool(text: str) -> str:
    return text + "!"


def log(experiment_name: str) -> None:
    experiment = mlflow.set_experiment(experiment_name)
    agent("hello")
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    found = MlflowClient().search_traces(locations=[experiment.experiment_id])
    spans = sorted(s.name for t in found for s in t.data.spans)
    print(json.dumps({"experiment_id": experiment.experiment_id, "trace_id": trace_id,
                      "found": [t.info.trace_id for t in found], "spans": spans}))


def probe() -> None:
    try:
        MlflowClient().search_experiments()
    except MlflowException as exc:
        print(json.dumps({"error_code": exc.error_code}))
        return
    print(json.dumps({"error_code": "OK"}))


if __name__ == "__main__":
    if sys.argv[1] == "log":
        log(sys.argv[2])
    else:
        probe()
