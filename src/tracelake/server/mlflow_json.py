"""Entities to and from the JSON shapes of MLflow's REST API (proto3 JSON mapping)."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

import orjson

from tracelake.entities import Assessment, AssessmentSource, Experiment, Span, Trace, TraceInfo
from tracelake.errors import InvalidRequest

_STATUS_TO_MLFLOW = {"OK": "STATUS_CODE_OK", "ERROR": "STATUS_CODE_ERROR", "UNSET": "STATUS_CODE_UNSET"}


def ms_to_timestamp(ms: int) -> str:
    """Milliseconds since epoch → RFC 3339 string (proto Timestamp JSON)."""
    dt = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def timestamp_to_ms(value: Any) -> int:
    """Proto Timestamp JSON (RFC 3339 string) or a number of ms → ms since epoch."""
    if value is None or value == "":
        raise InvalidRequest("missing timestamp")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):  # {"seconds": .., "nanos": ..}
        return int(value.get("seconds", 0)) * 1000 + int(value.get("nanos", 0)) // 1_000_000
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"invalid timestamp {text!r}: expected RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


def ms_to_duration(ms: int) -> str:
    return f"{ms / 1000:.3f}s"


def duration_to_ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        return int(value.get("seconds", 0)) * 1000 + int(value.get("nanos", 0)) // 1_000_000
    text = str(value)
    try:
        return int(round(float(text.rstrip("s")) * 1000))
    except ValueError:
        raise InvalidRequest(f"invalid duration {text!r}: expected e.g. '1.5s'") from None


def experiment_json(exp: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": [{"key": k, "value": v} for k, v in exp.tags.items()],
    }


def assessment_json(a: Assessment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "assessment_id": a.assessment_id,
        "assessment_name": a.name,
        "trace_id": a.trace_id,
        "source": {"source_type": a.source.source_type, "source_id": a.source.source_id},
        "create_time": ms_to_timestamp(a.create_time),
        "last_update_time": ms_to_timestamp(a.last_update_time),
        "valid": a.valid,
    }
    if a.span_id:
        out["span_id"] = a.span_id
    if a.rationale is not None:
        out["rationale"] = a.rationale
    if a.metadata:
        out["metadata"] = a.metadata
    if a.overrides:
        out["overrides"] = a.overrides
    if a.kind == "expectation":
        out["expectation"] = {"value": a.value}
    else:
        feedback: dict[str, Any] = {"value": a.value}
        if a.error:
            feedback["error"] = a.error
        out["feedback"] = feedback
    return out


def assessment_from_json(data: dict[str, Any], trace_id: str) -> Assessment:
    if not isinstance(data, dict):
        raise InvalidRequest("'assessment' must be an object")
    name = data.get("assessment_name") or data.get("name")
    if not name or not isinstance(name, str):
        raise InvalidRequest("assessment needs a non-empty 'assessment_name'")
    if "expectation" in data:
        kind, body = "expectation", data.get("expectation") or {}
    elif "feedback" in data:
        kind, body = "feedback", data.get("feedback") or {}
    else:
        raise InvalidRequest("assessment needs a 'feedback' or an 'expectation'")
    if not isinstance(body, dict):
        raise InvalidRequest(f"'{kind}' must be an object")
    value = body.get("value")
    if value is None and "serialized_value" in body:
        serialized = body["serialized_value"] or {}
        try:
            value = orjson.loads(serialized.get("value", "null"))
        except (orjson.JSONDecodeError, AttributeError):
            value = serialized.get("value") if isinstance(serialized, dict) else None
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise InvalidRequest("'source' must be an object")
    now_ms = 0
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("'metadata' must be an object of strings")
    return Assessment(
        assessment_id=str(data.get("assessment_id") or ""),
        trace_id=trace_id,
        name=name,
        kind=kind,
        value=value,
        rationale=data.get("rationale"),
        source=AssessmentSource(source_type=str(source.get("source_type") or "HUMAN"),
                                source_id=str(source.get("source_id") or "")),
        span_id=data.get("span_id") or None,
        create_time=timestamp_to_ms(data["create_time"]) if data.get("create_time") else now_ms,
        last_update_time=timestamp_to_ms(data["last_update_time"]) if data.get("last_update_time") else now_ms,
        metadata={str(k): str(v) for k, v in metadata.items()},
        error=body.get("error") if kind == "feedback" else None,
        overrides=data.get("overrides"),
        valid=bool(data.get("valid", True)),
    )


def trace_info_json(info: TraceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace_id": info.trace_id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": info.experiment_id}},
        "request_time": ms_to_timestamp(info.request_time),
        "state": info.state,
        "trace_metadata": dict(info.trace_metadata),
        # Spans live in our store (never in a traces.json artifact): telling the mlflow client so
        # stops it from uploading the trace a second time.
        "tags": {**info.tags, "mlflow.trace.spansLocation": "TRACKING_STORE",
                 "mlflow.artifactLocation": f"mlflow-artifacts:/{info.experiment_id}/traces/{info.trace_id}/artifacts"},
        "assessments": [assessment_json(a) for a in info.assessments],
    }
    if info.name and "mlflow.traceName" not in info.tags:
        out["tags"]["mlflow.traceName"] = info.name  # the MLflow UI and client show traces by this tag
    if info.client_request_id:
        out["client_request_id"] = info.client_request_id
    if info.execution_duration is not None:
        out["execution_duration"] = ms_to_duration(info.execution_duration)
    if info.request_preview is not None:
        out["request_preview"] = info.request_preview
    if info.response_preview is not None:
        out["response_preview"] = info.response_preview
    return out


def _b64_id(hex_id: str | None) -> str:
    if not hex_id:
        return ""
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP AnyValue in proto JSON (snake_case), as MLflow's server sends."""
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": value}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, dict):
        return {"kvlist_value": {"values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()]}}
    if isinstance(value, (list, tuple)):
        return {"array_value": {"values": [any_value(v) for v in value]}}
    if value is None:
        return {}
    return {"string_value": str(value)}


def json_value(text: str | None) -> Any:
    """Inputs/outputs are stored as JSON text; MLflow wants the structured value back."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def span_json(span: Span) -> dict[str, Any]:
    """A span as OpenTelemetry ``Span`` proto JSON, the shape MLflow's GetTrace answers with:
    base64 ids, typed attribute values (the client JSON-encodes each one back)."""
    attributes: dict[str, Any] = dict(span.attributes)
    attributes["mlflow.traceRequestId"] = span.request_id
    attributes["mlflow.spanType"] = span.span_type
    if span.inputs is not None:
        attributes["mlflow.spanInputs"] = json_value(span.inputs)
    if span.outputs is not None:
        attributes["mlflow.spanOutputs"] = json_value(span.outputs)
    if span.input_tokens is not None or span.output_tokens is not None:
        attributes["mlflow.chat.tokenUsage"] = {
            "input_tokens": span.input_tokens or 0, "output_tokens": span.output_tokens or 0,
            "total_tokens": span.total_tokens or (span.input_tokens or 0) + (span.output_tokens or 0),
        }
    out: dict[str, Any] = {
        "trace_id": _b64_id(span.trace_id),
        "span_id": _b64_id(span.span_id),
        "parent_span_id": _b64_id(span.parent_span_id),
        "name": span.name,
        "start_time_unix_nano": span.start_time_ns,
        "end_time_unix_nano": span.end_time_ns or 0,
        "attributes": [{"key": k, "value": any_value(v)} for k, v in attributes.items()],
        "events": [{"time_unix_nano": e.time_ns, "name": e.name,
                    "attributes": [{"key": k, "value": any_value(v)} for k, v in e.attributes.items()]}
                   for e in span.events],
        "status": {"code": _STATUS_TO_MLFLOW.get(span.status_code, "STATUS_CODE_UNSET"),
                   "message": span.status_message},
    }
    return out


def trace_json(trace: Trace) -> dict[str, Any]:
    """A whole trace as MLflow's GetTrace/batchGet answer it: info + OTel proto spans."""
    return {"trace_info": trace_info_json(trace.info), "spans": [span_json(s) for s in trace.spans]}
