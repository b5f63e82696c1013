"""Exporter to a tracelake server: OTLP/HTTP JSON, gzip'd, to ``{tracking_uri}/v1/traces``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from tracelake.tracing.exporters._http import HttpSender, RetryPolicy
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.wire import build_resource, encode_otlp_json

if TYPE_CHECKING:
    from tracelake.tracing.span import Span


class TracelakeServerExporter(SpanExporter):
    """POSTs batches as OTLP/JSON. The experiment is named by id (``x-tracelake-experiment-id``)
    or, without an id, by name (``x-tracelake-experiment-name``; the server creates it)."""

    def __init__(self, tracking_uri: str, *, experiment_id: str | None = None,
                 experiment_name: str | None = None, token: str | None = None,
                 service_name: str | None = None, timeout_s: float = 10.0,
                 retry: RetryPolicy | None = None) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "tracelake-python"}
        if experiment_id:
            headers["x-tracelake-experiment-id"] = experiment_id
        elif experiment_name:
            headers["x-tracelake-experiment-name"] = experiment_name
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.endpoint = tracking_uri.rstrip("/") + "/v1/traces"
        self.resource = build_resource(service_name, experiment_id, experiment_name)
        self._sender = HttpSender(self.endpoint, headers, timeout_s=timeout_s, retry=retry)

    def export(self, spans: Sequence[Span]) -> bool:
        return self._sender.post(encode_otlp_json(spans, self.resource or {}))

    def shutdown(self) -> None:
        self._sender.close()
