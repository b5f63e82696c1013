"""``SqlStore``: the ``Store`` on SQLite or PostgreSQL, assembled from one part per concept.

=====================  ====================================================
part                   module
=====================  ====================================================
experiments            ``experiments.py``
ingest (group commit)  ``ingest.py`` (+ ``spanrows.py``, ``tracerows.py``)
traces, tags, search   ``traces.py``
assessments            ``assessments.py``
metrics rollups        ``rollups.py``
masking rules          ``masking.py``
deletion, retention    ``retention.py``
=====================  ====================================================

Thread safety: one engine (pooled connections); any thread may call any method. Writes
are serialised by the store's write lock (``core.StoreCore.write``), reads run in parallel.
"""
from __future__ import annotations

from sqlalchemy import select

from tracelake.entities import TraceInfo
from tracelake.entities.trace import METADATA_SESSION, METADATA_USER, TraceState
from tracelake.errors import InvalidRequest, LimitExceeded
from tracelake.settings import Settings
from tracelake.store.artifacts import Artifacts, normalize_root
from tracelake.store.base import Store
from tracelake.store.sql.assessments import AssessmentsMixin
from tracelake.store.sql.core import Limits, experiment_row, next_trace_key, norm_trace_id
from tracelake.store.sql.engine import SQLITE_CACHE_KIB, make_engine
from tracelake.store.sql.experiments import ExperimentsMixin
from tracelake.store.sql.ingest import IngestMixin
from tracelake.store.sql.masking import MaskingMixin
from tracelake.store.sql.retention import RetentionMixin
from tracelake.store.sql.rollups import (
    RollupDelta,
    RollupsMixin,
    apply_rollups,
    minute_of,
)
from tracelake.store.sql.schema import experiments, traces
from tracelake.store.sql.tracerows import (
    TraceRow,
    new_trace_row,
    write_tags_and_metadata,
    write_trace_rows,
)
from tracelake.store.sql.traces import TracesMixin


class SqlStore(ExperimentsMixin, IngestMixin, TracesMixin, AssessmentsMixin, RollupsMixin, MaskingMixin,
               RetentionMixin, Store):
    """The SQL store. ``artifact_root`` (a folder, ``file://`` or ``s3://bucket/prefix``) holds
    offloaded span content under each experiment's ``{artifact_root}/{experiment_id}``.

    ``migrate`` runs the schema migrations first (idempotent); ``artifacts`` replaces the
    default artifact access (e.g. to point S3 at a test endpoint).
    """

    def __init__(self, uri: str, artifact_root: str, offload_span_bytes: int = 65536,
                 max_spans_per_trace: int = 100_000, max_traces_per_experiment: int = 10_000_000,
                 max_trace_bytes: int = 256 * 1024 * 1024, *, migrate: bool = True,
                 artifacts: Artifacts | None = None, s3_endpoint_url: str | None = None,
                 sqlite_cache_kib: int = SQLITE_CACHE_KIB) -> None:
        self.artifact_root = normalize_root(artifact_root)
        self.limits = Limits(max_spans_per_trace=max_spans_per_trace,
                             max_traces_per_experiment=max_traces_per_experiment,
                             max_trace_bytes=max_trace_bytes, offload_span_bytes=offload_span_bytes)
        self.artifacts = artifacts or Artifacts(s3_endpoint_url=s3_endpoint_url)
        if migrate:
            from tracelake.store.migrations import upgrade

            upgrade(uri)
        self.engine = make_engine(uri, sqlite_cache_kib=sqlite_cache_kib)
        self.ensure_default_experiment()

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True,
                      sqlite_cache_kib: int = SQLITE_CACHE_KIB) -> SqlStore:
        """The store ``settings`` describe, with their limits (the server and its children)."""
        return cls(settings.store, artifact_root=settings.artifacts, offload_span_bytes=settings.offload_span_bytes,
                   max_spans_per_trace=settings.max_spans_per_trace,
                   max_traces_per_experiment=settings.max_traces_per_experiment,
                   max_trace_bytes=settings.max_trace_bytes, migrate=migrate, sqlite_cache_kib=sqlite_cache_kib)

    def close(self) -> None:
        self.engine.dispose()

    def start_trace(self, info: TraceInfo) -> TraceInfo:
        """MLflow StartTraceV3: create the trace row or merge ``info`` into it (idempotent).

        Until the root span has arrived the client's state, times and previews are taken;
        after that the spans are the authority. Metadata: first value wins; tags: last wins.
        """
        tid = norm_trace_id(info.trace_id)
        with self.write() as tx:
            conn = tx.conn
            eid = experiment_row(conn, info.experiment_id, active=True).experiment_id
            old = conn.execute(select(traces).where(traces.c.trace_id == tid)).first()
            if old is None:
                count = conn.execute(select(experiments.c.trace_count)
                                     .where(experiments.c.experiment_id == eid)).scalar_one()
                if count >= self.limits.max_traces_per_experiment:
                    raise LimitExceeded(f"Experiment '{eid}' holds the maximum of "
                                        f"{self.limits.max_traces_per_experiment} traces")
                tr = new_trace_row(tid, eid, next_trace_key(conn))
                tr.values["request_time"] = info.request_time or tr.values["request_time"]
            else:
                if old.experiment_id != eid:
                    raise InvalidRequest(f"Trace {tid} belongs to experiment '{old.experiment_id}', "
                                         f"not '{info.experiment_id}'")
                tr = TraceRow(dict(old._mapping), dict(old._mapping))
            v = tr.values
            was_done = v["state"] != TraceState.IN_PROGRESS
            if v["root_span_id"] is None:
                if info.state != TraceState.IN_PROGRESS and not was_done:
                    v["state"] = info.state
                    v["request_time"] = info.request_time or v["request_time"]
                    v["execution_duration"] = info.execution_duration
                v["request_preview"] = info.request_preview or v["request_preview"]
                v["response_preview"] = info.response_preview or v["response_preview"]
                v["name"] = info.name or v["name"]
            v["client_request_id"] = info.client_request_id or v["client_request_id"]
            v["session_id"] = v["session_id"] or info.trace_metadata.get(METADATA_SESSION)
            v["user_id"] = v["user_id"] or info.trace_metadata.get(METADATA_USER)
            write_trace_rows(conn, tx.seq, [tr], force={tid})
            write_tags_and_metadata(conn, {(tid, k): val for k, val in info.tags.items()},
                                    {(tid, k): val for k, val in info.trace_metadata.items()})
            if not was_done and v["state"] != TraceState.IN_PROGRESS:
                delta = RollupDelta()
                delta.add_request(v["execution_duration"] or 0, v["state"] == TraceState.ERROR)
                delta.add_usage(v["input_tokens"], v["output_tokens"], v["cost"])
                apply_rollups(conn, {(eid, minute_of(v["request_time"])): delta})
            if old is None:
                conn.execute(experiments.update().where(experiments.c.experiment_id == eid)
                             .values(trace_count=experiments.c.trace_count + 1))
        return self.get_trace_info(tid)


__all__ = ["SqlStore"]
