"""From an OTLP/HTTP request to normalised ``SpanBatch``es, one per experiment.

The server calls ``decode_request`` (pure CPU: no I/O, no store), resolves the experiment
name of batches whose ``experiment_id`` is ``""``, calls ``apply_masking`` per batch with
that experiment's rules, and hands the batches to the writer.

Experiment of a resource's spans, first match wins:
1. the ``x-tracelake-experiment-id`` / ``x-mlflow-experiment-id`` header (``header_experiment_id``);
2. the ``x-tracelake-experiment-name`` header (``header_experiment_name``) — to be resolved;
3. resource attribute ``tracelake.experiment_id``, ``mlflow.experimentId`` or ``mlflow.experiment_id``;
4. resource attribute ``tracelake.experiment_name`` — to be resolved;
5. ``default_experiment_id``; with none, the request is rejected (400).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracelake.errors import InvalidRequest
from tracelake.ingest.conventions import TraceFacts, json_string, normalise_span
from tracelake.ingest.otlp import ResourceSpans, decode_otlp
from tracelake.store.base import SpanBatch, TraceUpdate

RESOURCE_EXPERIMENT_ID_KEYS = ("tracelake.experiment_id", "mlflow.experimentId", "mlflow.experiment_id")
RESOURCE_EXPERIMENT_NAME_KEY = "tracelake.experiment_name"


@dataclass(slots=True)
class ExperimentBatch(SpanBatch):
    """A ``SpanBatch`` plus the experiment name to resolve when the id is not known.

    ``experiment_id`` is ``""`` exactly when only ``experiment_name`` is known: the server
    resolves the name and calls ``assign_experiment_id``.
    """

    experiment_name: str | None = None

    def assign_experiment_id(self, experiment_id: str) -> None:
        """Set the resolved id on the batch and on its trace updates."""
        self.experiment_id = experiment_id
        for update in self.traces:
            update.experiment_id = experiment_id


@dataclass(slots=True)
class DecodedRequest:
    batches: list[ExperimentBatch] = field(default_factory=list)  # one per experiment
    span_count: int = 0
    trace_count: int = 0  # distinct trace ids in the request


def decode_request(body: bytes, content_type: str | None, content_encoding: str | None, *,
                   max_bytes: int, default_experiment_id: str | None, header_experiment_id: str | None,
                   header_experiment_name: str | None = None) -> DecodedRequest:
    """Decode, validate and normalise one OTLP/HTTP trace export request.

    Raises ``UnsupportedMediaType`` (415), ``InvalidRequest`` (400), ``Unprocessable`` (422)
    or ``PayloadTooLarge`` (413); see ``tracelake.ingest.otlp``.
    """
    resources = decode_otlp(body, content_type, content_encoding, max_bytes)
    result = DecodedRequest()
    by_target: dict[tuple[str, str | None], ExperimentBatch] = {}
    facts_by_target: dict[tuple[str, str | None], dict[str, TraceFacts]] = {}
    trace_ids: set[str] = set()
    for resource in resources:
        if not resource.spans:
            continue
        target = experiment_target(resource, header_experiment_id, header_experiment_name, default_experiment_id)
        batch = by_target.get(target)
        if batch is None:
            batch = by_target[target] = ExperimentBatch(target[0], [], [], target[1])
            result.batches.append(batch)
            facts_by_target[target] = {}
        facts = facts_by_target[target]
        for span in resource.spans:
            found = normalise_span(span)
            if found is not None:
                merge_facts(facts, span.trace_id, found)
            trace_ids.add(span.trace_id)
        batch.spans.extend(resource.spans)
        result.span_count += len(resource.spans)
    for target, batch in by_target.items():
        batch.traces = [
            TraceUpdate("tr-" + trace_id, batch.experiment_id, f.tags, f.metadata, f.client_request_id)
            for trace_id, f in facts_by_target[target].items()
        ]
    result.trace_count = len(trace_ids)
    return result


def experiment_target(resource: ResourceSpans, header_id: str | None, header_name: str | None,
            default_id: str | None) -> tuple[str, str | None]:
    """(experiment id, experiment name): the id is "" when the name must be resolved."""
    if header_id:
        return header_id, None
    if header_name:
        return "", header_name
    attrs = resource.attributes
    for key in RESOURCE_EXPERIMENT_ID_KEYS:
        value = _resource_text(attrs.get(key))
        if value:
            return value, None
    name = _resource_text(attrs.get(RESOURCE_EXPERIMENT_NAME_KEY))
    if name:
        return "", name
    if default_id:
        return default_id, None
    raise InvalidRequest("no experiment for these spans: send the x-tracelake-experiment-id header or the "
                         "tracelake.experiment_id resource attribute")


def _resource_text(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json_string(value)  # MLflow JSON-encodes its attribute values


def merge_facts(facts: dict[str, TraceFacts], trace_id: str, found: TraceFacts) -> None:
    """Root-span facts override those seen on other spans of the same trace."""
    current = facts.get(trace_id)
    if current is None:
        facts[trace_id] = found
        return
    if found.from_root:
        current.tags.update(found.tags)
        current.metadata.update(found.metadata)
        if found.client_request_id is not None:
            current.client_request_id = found.client_request_id
        current.from_root = True
        return
    for key, value in found.tags.items():
        current.tags.setdefault(key, value)
    for key, value in found.metadata.items():
        current.metadata.setdefault(key, value)
    if current.client_request_id is None:
        current.client_request_id = found.client_request_id
