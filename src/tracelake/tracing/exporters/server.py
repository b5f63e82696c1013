"""Exporter to a tracelake server: the native batch format, gzip'd, to
``{tracking_uri}/api/tracelake/v1/spans``; OTLP/JSON to ``{tracking_uri}/v1/traces`` when the
server does not speak it (an older tracelake, an MLflow server, a collector).

It takes native rows (``takes_rows``): a backlog arrives as one long list, encoded
``PART_ROWS`` rows per ``orjson.dumps`` and sent in requests of at most ``MAX_REQUEST_BYTES``
(a part bigger than that goes alone)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from tracelake.tracing._log import logger
from tracelake.tracing.exporters._http import EndpointUnsupported, HttpSender, RetryPolicy, is_loopback
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.wire import (NATIVE_CONTENT_TYPE, Row, build_resource, encode_native, encode_otlp_json,
                                   native_body, native_rows, row_span)

if TYPE_CHECKING:
    from tracelake.tracing.span import Span

NATIVE_PATH = "/api/tracelake/v1/spans"
OTLP_PATH = "/v1/traces"
# Answers meaning "no such endpoint or format here", as opposed to "this batch is bad".
_NOT_NATIVE = frozenset({404, 405, 415, 501})
PART_ROWS = 512  # rows per orjson.dumps call (and spans per OTLP/JSON request)
MAX_REQUEST_BYTES = 4 << 20  # uncompressed, when more than one part; tracelake servers take 64 MiB by default


class TracelakeServerExporter(SpanExporter):
    """POSTs batches in the native format, falling back to OTLP/JSON for good on the first answer
    that says the server does not speak it (the batch is then re-sent as OTLP/JSON). The
    experiment is named by id (``x-tracelake-experiment-id``) or, without an id, by name
    (``x-tracelake-experiment-name``; the server creates it).

    ``native=False`` sends OTLP/JSON from the start. ``compression``: ``gzip``, ``none``, or
    ``auto`` (gzip unless the server is on this machine, where it would only cost CPU).
    """

    takes_rows = True

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
                self._fall_back(native, exc)
        return self._otlp.post(encode_otlp_json(spans, self.resource or {}))

    def export_rows(self, rows: Sequence[Row]) -> bool:
        native = self._native
        resource: dict[str, Any] = self.resource or {}
        ok = True
        sent = 0  # rows[:sent] are sent (or given up on)
        if native is not None:
            parts: list[bytes] = []
            empty = size = len(native_body(parts, resource))
            try:
                for start in range(0, len(rows), PART_ROWS):
                    part = native_rows(rows[start:start + PART_ROWS])
                    if parts and size + len(part) > MAX_REQUEST_BYTES:
                        ok = native.post(native_body(parts, resource), unsupported=_NOT_NATIVE) and ok
                        parts, size, sent = [], empty, start
                    parts.append(part)
                    size += len(part) - 1  # its brackets become one comma
                if parts:
                    ok = native.post(native_body(parts, resource), unsupported=_NOT_NATIVE) and ok
                return ok
            except EndpointUnsupported as exc:
                self._fall_back(native, exc)
        for start in range(sent, len(rows), PART_ROWS):
            spans = [row_span(row) for row in rows[start:start + PART_ROWS]]
            ok = self._otlp.post(encode_otlp_json(spans, resource)) and ok
        return ok

    def _fall_back(self, native: HttpSender, exc: EndpointUnsupported) -> None:
        self._native = None
        native.close()
        logger.info("tracelake: %s does not take the native span format (HTTP %d); "
                    "sending OTLP/JSON to %s", native.url, exc.status, self.endpoint)

    def shutdown(self) -> None:
        if self._native is not None:
            self._native.close()
        self._otlp.close()
