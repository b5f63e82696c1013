"""SDK settings, declared as data (name, env var, default, help).

Precedence: explicit ``configure(...)`` argument > ``TRACELAKE_*`` environment variable > default.
This is the only SDK module that reads the environment. A malformed environment value is
logged and ignored (the app keeps running with the default); a malformed explicit argument
raises ``ValueError`` from ``configure``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from tracelake.tracing._log import logger
from tracelake.tracing.serialize import DEFAULT_MAX_VALUE_BYTES


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_ratio(text: str) -> float:
    ratio = float(text)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sampling ratio must be within [0, 1], got {ratio}")
    return ratio


def _parse_positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer, got {value}")
    return value


def _parse_positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


COMPRESSIONS = ("auto", "gzip", "none")


def _parse_compression(text: str) -> str:
    value = text.strip().lower()
    if value not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {text!r}")
    return value


def _opt_str(text: str) -> str | None:
    return text.strip() or None


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = _opt_str

    @property
    def env_var(self) -> str:
        return "TRACELAKE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("tracking_uri", None, "Where spans go: http(s)://HOST:PORT of a tracelake server, or "
            "file:///PATH.jsonl. Unset: nothing is exported (unless an exporter is passed)."),
    Setting("experiment_name", None, "Experiment to log to, by name (the server creates it if missing)."),
    Setting("experiment_id", None, "Experiment to log to, by id (wins over the name)."),
    Setting("token", None, "Bearer token sent to the tracelake server."),
    Setting("sampling_ratio", 1.0, "Fraction of traces kept, decided at the root span (0..1).", _parse_ratio),
    Setting("disabled", False, "Turn tracing off: decorated functions run untraced.", _parse_bool),
    Setting("service_name", None, "OTel resource service.name (default: the script name, sys.argv[0])."),
    Setting("max_queue_size", 2048, "Finished spans waiting for export; more are dropped and counted.",
            _parse_positive_int),
    Setting("max_export_batch_size", 512, "Spans per export request (a backlog to a tracelake server goes out "
            "in requests of up to 16 batches or 4 MiB).", _parse_positive_int),
    Setting("schedule_delay_s", 1.0, "Longest wait before a partial batch is exported (seconds).",
            _parse_positive_float),
    Setting("max_value_bytes", DEFAULT_MAX_VALUE_BYTES,
            "Largest JSON text kept for one input/output value; longer ones are truncated with a marker.",
            _parse_positive_int),
    Setting("export_compression", "auto", "gzip or none for export requests; auto: gzip unless the server "
            "is on this machine (localhost, 127.0.0.0/8, ::1), where it would cost CPU and save nothing.",
            _parse_compression),
    Setting("export_timeout_s", 10.0, "HTTP timeout of one export request (seconds).", _parse_positive_float),
    Setting("exit_flush_timeout_s", 5.0, "Longest wait for the final flush at interpreter exit (seconds).",
            _parse_positive_float),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class TracingConfig:
    tracking_uri: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    token: str | None = None
    sampling_ratio: float = 1.0
    disabled: bool = False
    service_name: str | None = None
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    schedule_delay_s: float = 1.0
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    export_compression: str = "auto"
    export_timeout_s: float = 10.0
    exit_flush_timeout_s: float = 5.0


def resolve_config(explicit: Mapping[str, Any] | None = None,
                   env: Mapping[str, str] | None = None) -> TracingConfig:
    """Build the configuration: explicit values (not None) first, then env vars, then defaults."""
    explicit = explicit or {}
    unknown = set(explicit) - set(SETTINGS_BY_NAME)
    if unknown:
        raise TypeError(f"unknown tracelake setting(s): {', '.join(sorted(unknown))}")
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given = explicit.get(setting.name)
        if given is not None:
            values[setting.name] = setting.parse(str(given)) if setting.parse is not _opt_str else str(given)
            continue
        raw = env.get(setting.env_var)
        if raw is None:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            logger.log(logging.WARNING, "tracelake: ignoring %s=%r (%s); using %r",
                       setting.env_var, raw, exc, setting.default)
            values[setting.name] = setting.default
    return TracingConfig(**values)
