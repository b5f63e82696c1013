"""Server settings, declared as data: each has a name, a ``TRACELAKE_*`` env var, a default
and help text. Precedence: explicit argument (CLI flag) > environment variable > default.

The settings object is built once at the edge (the CLI, or a test) and passed down; no
other module reads the environment.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env_var(self) -> str:
        return "TRACELAKE_" + self.name.upper()


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _opt_int(value: str) -> int | None:
    return int(value) if value.strip() else None


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("host", "127.0.0.1", "Address to bind. Non-loopback needs --auth or --insecure-no-auth."),
    SettingSpec("port", 5000, "TCP port to listen on.", int),
    SettingSpec("store", "sqlite:///./tracelake.db", "Store URI: sqlite:///PATH or postgresql://USER:PW@HOST/DB."),
    SettingSpec("artifacts", "./tracelake-artifacts", "Default artifact root: a folder or s3://bucket/prefix."),
    SettingSpec("lake", "./tracelake-lake", "Delta Lake root: a folder or s3://bucket/prefix."),
    SettingSpec("lake_sync_interval_s", 2.0, "Seconds between lake syncs inside the server (0 = no sync).", float),
    SettingSpec("lake_sync_process", True,
                "tracelake server runs the lake sync in a child process at a lower priority, off the ingest "
                "path's interpreter lock (false: a thread of the server process, one interpreter's memory).",
                _bool),
    SettingSpec("lake_maintenance_interval_s", 3600.0,
                "Seconds between lake table maintenance passes: compaction, checkpoint, vacuum (0 = never).", float),
    SettingSpec("lake_vacuum_retention_hours", 168.0,
                "Vacuum keeps data files younger than this (hours) for readers of older snapshots.", float),
    SettingSpec("lake_catalog", "tracelake", "Catalog name of the lake tables (catalog.schema.table)."),
    SettingSpec("lake_sql_timeout_s", 60.0, "Longest a lake SQL query may run (seconds).", float),
    SettingSpec("max_request_bytes", 64 * 1024 * 1024, "Largest accepted request body (bytes, after gunzip).", int),
    SettingSpec("max_trace_bytes", 256 * 1024 * 1024, "Largest trace (bytes of span content).", int),
    SettingSpec("max_spans_per_trace", 100_000, "Most spans kept for one trace.", int),
    SettingSpec("max_traces_per_experiment", 10_000_000, "Most traces one experiment may hold.", int),
    SettingSpec("offload_span_bytes", 64 * 1024,
                "Span content (inputs+outputs+attributes+events) above this size goes to artifact storage.", int),
    SettingSpec("ingest_rate", 0.0, "Ingest requests per second allowed per server (0 = unlimited).", float),
    SettingSpec("ingest_burst", 0, "Token-bucket burst for --ingest-rate (0 = 2 x rate).", int),
    SettingSpec("experiment_ingest_rate", 0.0, "Ingest requests per second allowed per experiment (0 = unlimited).",
                float),
    SettingSpec("write_queue_size", 256, "Ingest requests waiting for the writer before answering 503.", int),
    SettingSpec("writer_process", True,
                "tracelake server commits ingest in a child process with its own interpreter lock (false: a "
                "thread of the server process).", _bool),
    SettingSpec("retention_max_age_days", 0.0, "Delete traces older than this (0 = keep).", float),
    SettingSpec("retention_max_traces", 0, "Keep at most this many traces per experiment (0 = no cap).", int),
    SettingSpec("retention_interval_s", 300.0, "Seconds between retention passes.", float),
    SettingSpec("auth", False, "Require authentication.", _bool),
    SettingSpec("insecure_no_auth", False, "Allow binding a non-loopback address without auth.", _bool),
    SettingSpec("admin_password", "", "Password of the first admin ('admin'), set on first start with auth; "
                "empty = a one-time password printed once."),
    SettingSpec("session_ttl_hours", 12.0, "Lifetime of a UI sign-in session (hours).", float),
    SettingSpec("login_max_failures", 5,
                "Failed sign-ins allowed per user name per window (x10 per client address; 0 = no limit).", int),
    SettingSpec("login_window_s", 300.0, "Window (seconds) over which failed sign-ins are counted.", float),
    SettingSpec("log_level", "info", "Log level: debug, info, warning, error."),
)

_SPECS = {s.name: s for s in SETTINGS}


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    store: str = "sqlite:///./tracelake.db"
    artifacts: str = "./tracelake-artifacts"
    lake: str = "./tracelake-lake"
    lake_sync_interval_s: float = 2.0
    lake_sync_process: bool = True
    lake_maintenance_interval_s: float = 3600.0
    lake_vacuum_retention_hours: float = 168.0
    lake_catalog: str = "tracelake"
    lake_sql_timeout_s: float = 60.0
    max_request_bytes: int = 64 * 1024 * 1024
    max_trace_bytes: int = 256 * 1024 * 1024
    max_spans_per_trace: int = 100_000
    max_traces_per_experiment: int = 10_000_000
    offload_span_bytes: int = 64 * 1024
    ingest_rate: float = 0.0
    ingest_burst: int = 0
    experiment_ingest_rate: float = 0.0
    write_queue_size: int = 256
    writer_process: bool = True
    retention_max_age_days: float = 0.0
    retention_max_traces: int = 0
    retention_interval_s: float = 300.0
    auth: bool = False
    insecure_no_auth: bool = False
    admin_password: str = field(default="", repr=False)  # a secret: never in a repr or a log
    session_ttl_hours: float = 12.0
    login_max_failures: int = 5
    login_window_s: float = 300.0
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings: ``overrides`` (non-None values) > environment > defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            if spec.env_var in env:
                values[spec.name] = spec.parse(env[spec.env_var])
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key not in _SPECS:
                raise KeyError(f"unknown setting {key!r}")
            values[key] = value
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)
