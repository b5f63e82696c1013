"""``configure``, ``flush`` and the process-wide processor.

Until ``configure`` is called, the first span configures the SDK from the environment. A new
``configure`` flushes and replaces the previous processor. Everything is flushed at interpreter
exit (bounded by ``exit_flush_timeout_s``).
"""
from __future__ import annotations

import atexit
import logging
import threading
from typing import Any, Sequence
from urllib.parse import unquote, urlsplit

from tracelake.tracing._log import logger
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.config import TracingConfig, resolve_config
from tracelake.tracing.exporters.base import SpanExporter
from tracelake.tracing.processor import BatchSpanProcessor, ExportStats, Masking
from tracelake.tracing.wire import build_resource

_lock = threading.RLock()
_config: TracingConfig | None = None
_atexit_registered = False


def _exporter_for_uri(config: TracingConfig) -> SpanExporter | None:
    uri = config.tracking_uri
    if not uri:
        return None
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        from tracelake.tracing.exporters.server import TracelakeServerExporter

        return TracelakeServerExporter(uri, experiment_id=config.experiment_id,
                                       experiment_name=config.experiment_name, token=config.token,
                                       service_name=config.service_name, timeout_s=config.export_timeout_s,
                                       compression=config.export_compression)
    if scheme == "file":
        from tracelake.tracing.exporters.file import FileSpanExporter

        return FileSpanExporter(unquote(urlsplit(uri).path))
    raise ValueError(f"unsupported tracking URI {uri!r}: use http(s)://HOST:PORT or file:///PATH.jsonl")


def configure(*, tracking_uri: str | None = None, experiment_name: str | None = None,
              experiment_id: str | None = None, token: str | None = None,
              sampling_ratio: float | None = None, disabled: bool | None = None,
              service_name: str | None = None, exporter: SpanExporter | Sequence[SpanExporter] | None = None,
              masking: Masking | None = None, **settings: Any) -> TracingConfig:
    """Configure tracing for this process; returns the resolved configuration.

    Each argument left as None falls back to its ``TRACELAKE_*`` environment variable, then to
    its default (see ``tracelake.tracing.config.SETTINGS``; other settings such as
    ``max_queue_size`` are accepted as keywords). ``exporter`` (one or a list) replaces the
    exporter chosen from ``tracking_uri``. ``masking(value) -> value`` is applied to every
    decoded input and output before export.
    """
    explicit = dict(settings, tracking_uri=tracking_uri, experiment_name=experiment_name,
                    experiment_id=experiment_id, token=token, sampling_ratio=sampling_ratio,
                    disabled=disabled, service_name=service_name)
    config = resolve_config(explicit)
    if exporter is None:
        found = _exporter_for_uri(config)
        exporters: list[SpanExporter] = [found] if found is not None else []
    else:
        exporters = list(exporter) if isinstance(exporter, (list, tuple)) else [exporter]  # type: ignore[list-item]
    resource = build_resource(config.service_name, config.experiment_id, config.experiment_name)
    for exp in exporters:
        if exp.resource is None:
            exp.resource = resource
    _install(config, exporters, masking)
    return config


def _install(config: TracingConfig, exporters: list[SpanExporter], masking: Masking | None) -> None:
    global _config, _atexit_registered
    with _lock:
        old = RUNTIME.processor
        processor = None
        if exporters and not config.disabled:
            processor = BatchSpanProcessor(exporters, max_queue_size=config.max_queue_size,
                                           max_export_batch_size=config.max_export_batch_size,
                                           schedule_delay_s=config.schedule_delay_s, masking=masking)
        elif not config.disabled:
            logger.info("tracelake: no tracking URI or exporter configured; spans are not exported")
        RUNTIME.processor = processor
        RUNTIME.sampling_ratio = config.sampling_ratio
        RUNTIME.max_value_bytes = config.max_value_bytes
        RUNTIME.enabled = not config.disabled
        RUNTIME.ready = True
        _config = config
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
    if old is not None:
        old.shutdown(config.exit_flush_timeout_s)


def _configure_from_env() -> None:
    """First-use initialisation: never raises (a bad environment leaves tracing without export)."""
    with _lock:
        if RUNTIME.ready:
            return
        try:
            configure()
        except (ValueError, TypeError) as exc:
            logger.log(logging.WARNING, "tracelake: bad configuration in the environment (%s); "
                       "spans are not exported", exc)
            _install(resolve_config({"tracking_uri": None}, env={}), [], None)


RUNTIME.init_hook = _configure_from_env


def get_config() -> TracingConfig:
    """The active configuration (resolving it from the environment if needed)."""
    RUNTIME.ensure_ready()
    assert _config is not None
    return _config


def flush(timeout_s: float = 30.0) -> bool:
    """Export every span finished so far; False if ``timeout_s`` passed first."""
    processor = RUNTIME.processor
    return processor.force_flush(timeout_s) if processor is not None else True


def get_export_stats() -> ExportStats:
    """Counters of the active exporter: queued, exported, failed and dropped spans."""
    processor = RUNTIME.processor
    return processor.stats() if processor is not None else ExportStats(0, 0, 0, 0)


def shutdown() -> None:
    """Flush and stop exporting (tracing keeps working, without export)."""
    with _lock:
        processor, RUNTIME.processor = RUNTIME.processor, None
    if processor is not None:
        processor.shutdown(_config.exit_flush_timeout_s if _config else 5.0)


def _at_exit() -> None:
    try:
        shutdown()
    except Exception:  # never turn interpreter exit into a traceback
        logger.debug("tracelake: shutdown at exit failed", exc_info=True)
