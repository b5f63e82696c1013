"""Exporter to a tracelake server: the native batch format, gzip'd, to
``{tracking_uri}/api/tracelake/v1/spans``; OTLP/JSON to ``{tracking_uri}/v1/traces`` when the
server does not speak it (an older tracelake, an MLflow server, a collector)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from tracelake.tracing._log import logger
from tracelake.tracing.exporters._http import EndpointUnsupported, HttpSender, RetryPolicy, is_loopback
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.wire import NATIVE_CONTENT_TYPE, build_resource, encode_native, encode_otlp_json

if TYPE_CHECKING:
    from tracelake.tracing.span import Span

NATIVE_PATH = "/api/tracelake/v1/spans"
OTLP_PATH = "/v1/traces"
# Answers meaning "no such endpoint or format here", as opposed to "this batch is bad".
_NOT_NATIVE = frozenset({404, 405, 415, 501})


class TracelakeServerExporter(SpanExporter):
    """POSTs batches in the native format, falling back to OTLP/JSON for good on the first answer
    that says the server does not speak it (the batch is then re-sent as OTLP/JSON). The
    experiment is named by id (``x-tracelake-experiment-id``) or, without an id, by name
    (``x-tracelake-experiment-name``; the server creates it).

    ``native=False`` sends OTLP/JSON from the start. ``compression``: ``gzip``, ``none``, or
    ``auto`` (gzip unless the server is on this machine, where it would only cost CPU).
    """

    def __init__(self, tracking_uri: str, *, experiment_id: str | None = None,
                 experiment_name: str | None = None, token: str | None = None,
                 service_name: str | None = None, timeout_s: float = 10.0,
                 retry: RetryPolicy | None = None, native: bool = True, compression: str = "auto") -> None:
        headers = {"User-Agent": "tracelake-python"}
        if experiment_id:
            headers["x-tracelake-experiment-id"] = experiment_id
        elif experiment_name:
            headers["x-tracelake-experiment-name"] = experiment_name
        if token:
            headers["Authorization"] = f"Bearer {token}"
        base = tracking_uri.rstrip("/")
        self.endpoint = base + OTLP_PATH
        self.native_endpoint = base + NATIVE_PATH
        self.resource = build_resource(service_name, experiment_id, experiment_name)
        compress = compression == "gzip" or compression == "auto" and not is_loopback(base)
        self._otlp = HttpSender(self.endpoint, {**headers, "Content-Type": "application/json"},
                                timeout_s=timeout_s, retry=retry, compress=compress)
        self._native: HttpSender | None = None
        if native:
            self._native = HttpSender(self.native_endpoint, {**headers, "Content-Type": NATIVE_CONTENT_TYPE},
                                      timeout_s=timeout_s, retry=retry, compress=compress)

    @property
    def uses_native(self) -> bool:
        """False once the server said it does not speak the native format."""
        return self._native is not None

    def export(self, spans: Sequence[Span]) -> bool:
        native = self._native
        if native is not None:
            try:
                return native.post(encode_native(spans, self.resource or {}), unsupported=_NOT_NATIVE)
            except EndpointUnsupported as exc:
                self._native = None
                native.close()
                logger.info("tracelake: %s does not take the native span format (HTTP %d); "
                            "sending OTLP/JSON to %s", native.url, exc.status, self.endpoint)
        return self._otlp.post(encode_otlp_json(spans, self.resource or {}))

    def shutdown(self) -> None:
        if self._native is not None:
            self._native.close()
        self._otlp.close()
