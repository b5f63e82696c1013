"""Entities to and from the JSON shapes of MLflow's REST API (proto3 JSON mapping)."""
from __future__ import annotations

import gc
import threading
from binascii import b2a_base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import orjson

from tracelake.entities import Assessment, AssessmentSource, Experiment, TraceInfo
from tracelake.entities.trace import hex_from_trace_id
from tracelake.errors import InvalidRequest
from tracelake.store.sql.traces import TraceRows

T = TypeVar("T")
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
    return b2a_base64(bytes.fromhex(hex_id), newline=False).decode("ascii")


def any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP AnyValue in proto JSON (snake_case), as MLflow's server sends."""
    kind = type(value)  # exact types first: what orjson decodes to, the hot path of GetTrace
    if kind is str:
        return {"string_value": value}
    if kind is int:
        return {"int_value": value}
    if kind is dict:
        return {"kvlist_value": {"values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()]}}
    if kind is list:
        return {"array_value": {"values": [any_value(v) for v in value]}}
    if kind is bool:
        return {"bool_value": value}
    if kind is float:
        return {"double_value": value}
    if value is None:
        return {}
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
    return {"string_value": str(value)}


def json_value(text: str | None) -> Any:
    """Inputs/outputs are stored as JSON text; MLflow wants the structured value back."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = True


def without_gc(build: Callable[[], T]) -> T:
    """``build()`` with no cyclic garbage collection while it runs.

    A 10,000-span trace is some 200,000 new dicts and lists; every few hundred of them start a
    collection, and the full ones walk every object of the process again, which doubled the
    time to answer. Nothing built here is cyclic garbage and the pause lasts one answer
    (reference counting frees everything as usual). ``build``'s objects are gone when it
    returns, before collection resumes: the first pass after the pause does not walk them.
    Overlapping pauses from several threads end when the last one does."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        return build()
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def trace_json(found: TraceRows) -> dict[str, Any]:
    """A whole trace as MLflow's GetTrace/batchGet answer it: info + OTel proto spans."""
    return {"trace_info": trace_info_json(found.info), "spans": _SpanEncoder(found).spans()}


# -- spans as OpenTelemetry proto JSON, straight from the rows -------------------------
#
# GetTrace of a 10,000-span trace must answer in well under 200 ms, so spans go from database
# rows to the output dicts directly (no ``Span`` entities), and what repeats across the spans
# of a trace is built once per trace and shared: a span's attribute list apart from its
# inputs/outputs/token usage (same stored attributes + span type => same entries), statuses,
# base64 ids of parents, short input/output values. The dicts are only ever serialised, so
# sharing them is safe.

_INPUTS, _OUTPUTS, _TOKENS = object(), object(), object()  # per-span slots of an attribute template
_REUSE_TEXT = 256  # inputs/outputs up to this many characters are converted once per trace


@dataclass(slots=True)
class _Attributes:
    """The attribute entries shared by spans with the same stored attributes and span type;
    ``None`` at the positions each span fills with its own inputs, outputs or token usage."""

    entries: list[dict[str, Any] | None]
    inputs_at: int
    outputs_at: int
    tokens_at: int
    per_span: bool  # any of the three


class _SpanEncoder:
    """Span rows of one trace (``SPAN_READ_COLUMNS``) → OpenTelemetry ``Span`` proto JSON, the shape
    MLflow's GetTrace answers with: base64 ids, typed attribute values (the client JSON-encodes
    each one back), MLflow's ``mlflow.*`` attributes from the span's columns."""

    def __init__(self, found: TraceRows) -> None:
        self.found = found
        self.request_id = found.info.trace_id
        self.trace_b64 = _b64_id(hex_from_trace_id(self.request_id))
        self.ids: dict[str, str] = {}
        self.templates: dict[tuple[Any, ...], _Attributes] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.statuses: dict[Any, dict[str, str]] = {}  # by code, or (code, message)
        self.usages: dict[tuple[Any, ...], dict[str, Any]] = {}

    def spans(self) -> list[dict[str, Any]]:
        content = self.found.content
        ids, templates, statuses, values = self.ids, self.templates, self.statuses, self.values
        trace_b64, value, template, usage = self.trace_b64, self.value, self.template, self.usage
        fromhex = bytes.fromhex
        out = []
        append = out.append
        for (span_id, parent_id, name, start, end, code, message, span_type, inputs, outputs, attributes, events,
             input_tokens, output_tokens, total_tokens, content_uri, _kind, _model, _cost) in self.found.spans:
            if content_uri is not None:
                blob = content.get(span_id) or {}
                inputs, outputs = blob.get("inputs"), blob.get("outputs")
                attributes, events = blob.get("attributes"), blob.get("events")
            has_tokens = input_tokens is not None or output_tokens is not None
            key = (attributes, span_type, inputs is not None, outputs is not None, has_tokens)
            shared = templates.get(key) or template(key)
            entries = shared.entries
            if shared.per_span:
                entries = entries.copy()
                if inputs is not None:
                    entries[shared.inputs_at] = {"key": "mlflow.spanInputs",
                                                 "value": values.get(inputs) or value(inputs)}
                if outputs is not None:
                    entries[shared.outputs_at] = {"key": "mlflow.spanOutputs",
                                                  "value": values.get(outputs) or value(outputs)}
                if has_tokens:
                    entries[shared.tokens_at] = usage(input_tokens, output_tokens, total_tokens)
            b64 = ids[span_id] = b2a_base64(fromhex(span_id), newline=False).decode()
            status = statuses.get(code if not message else (code, message)) or self.status(code, message)
            append({
                "trace_id": trace_b64,
                "span_id": b64,
                "parent_span_id": (ids.get(parent_id) or _b64_id(parent_id)) if parent_id else "",
                "name": name,
                "start_time_unix_nano": start,
                "end_time_unix_nano": end or 0,
                "attributes": entries,
                "events": _events_json(events) if events else [],
                "status": status,
            })
        return out

    def status(self, code: str, message: str) -> dict[str, str]:
        found = self.statuses[code if not message else (code, message)] = {
            "code": _STATUS_TO_MLFLOW.get(code, "STATUS_CODE_UNSET"), "message": message}
        return found

    def template(self, key: tuple[Any, ...]) -> _Attributes:
        """The attribute list for stored ``attributes`` text and span type, in the order MLflow
        gives it: stored keys first, then the ``mlflow.*`` ones this store keeps in columns."""
        text, span_type, has_inputs, has_outputs, has_tokens = key
        attributes: dict[str, Any] = dict(orjson.loads(text)) if text else {}
        attributes["mlflow.traceRequestId"] = self.request_id
        attributes["mlflow.spanType"] = span_type
        if has_inputs:
            attributes["mlflow.spanInputs"] = _INPUTS
        if has_outputs:
            attributes["mlflow.spanOutputs"] = _OUTPUTS
        if has_tokens:
            attributes["mlflow.chat.tokenUsage"] = _TOKENS
        entries: list[dict[str, Any] | None] = []
        at = {_INPUTS: -1, _OUTPUTS: -1, _TOKENS: -1}
        for k, v in attributes.items():
            if v is _INPUTS or v is _OUTPUTS or v is _TOKENS:
                at[v] = len(entries)
                entries.append(None)
            else:
                entries.append({"key": k, "value": any_value(v)})
        shared = self.templates[key] = _Attributes(entries, at[_INPUTS], at[_OUTPUTS], at[_TOKENS],
                                                   has_inputs or has_outputs or has_tokens)
        return shared

    def value(self, text: str) -> dict[str, Any]:
        """An input/output JSON text as an AnyValue (the text itself when it is not JSON)."""
        if len(text) > _REUSE_TEXT:
            return any_value(json_value(text))
        found = self.values.get(text)
        if found is None:
            found = self.values[text] = any_value(json_value(text))
        return found

    def usage(self, input_tokens: int | None, output_tokens: int | None, total_tokens: int | None) -> dict[str, Any]:
        key = (input_tokens, output_tokens, total_tokens)
        found = self.usages.get(key)
        if found is None:
            found = self.usages[key] = {"key": "mlflow.chat.tokenUsage", "value": any_value({
                "input_tokens": input_tokens or 0, "output_tokens": output_tokens or 0,
                "total_tokens": total_tokens or (input_tokens or 0) + (output_tokens or 0)})}
        return found


def _events_json(text: str) -> list[dict[str, Any]]:
    return [{"time_unix_nano": e["time_ns"], "name": e["name"],
             "attributes": [{"key": k, "value": any_value(v)} for k, v in (e.get("attributes") or {}).items()]}
            for e in orjson.loads(text)]
