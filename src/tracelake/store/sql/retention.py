"""Deleting traces: by id, by age (``delete_traces``) and by policy (``apply_retention``).

A trace goes with its spans, tags, metadata and assessments in one transaction; its
offloaded span content is removed from artifact storage after the commit (a crash in
between leaves unreferenced blobs, never rows pointing at missing blobs). Rollups are kept:
they are history, and dashboards must not change when old traces expire.
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from tracelake.errors import InvalidRequest
from tracelake.store.sql.core import (
    StoreCore,
    chunked,
    exp_id_int,
    experiment_row,
    norm_trace_id,
    now_ms,
    spans_of_any,
)
from tracelake.store.sql.schema import (
    assessments,
    experiments,
    spans,
    trace_metadata,
    trace_tags,
    trace_tombstones,
    traces,
)

RETENTION_CHUNK = 2_000  # traces per transaction: keeps the write lock short


class RetentionMixin(StoreCore):
    def delete_traces(self, experiment_id: str, trace_ids: list[str] | None = None,
                      max_timestamp_millis: int | None = None, max_traces: int | None = None) -> int:
        """Delete the listed traces, or those with ``request_time <= max_timestamp_millis``
        (oldest first, at most ``max_traces``). Returns how many were deleted."""
        if (trace_ids is None) == (max_timestamp_millis is None):
            raise InvalidRequest("delete_traces needs either trace_ids or max_timestamp_millis (not both)")
        if max_traces is not None and max_traces < 1:
            raise InvalidRequest("max_traces must be at least 1")
        eid = exp_id_int(experiment_id)
        with self.read() as conn:
            experiment_row(conn, eid)
        if trace_ids is not None:
            ids = sorted({norm_trace_id(t) for t in trace_ids})
            total = 0
            for part in chunked(ids, RETENTION_CHUNK):
                total += self._delete_where(select(traces.c.trace_id).where(
                    traces.c.experiment_id == eid, traces.c.trace_id.in_(list(part))))
            return total
        assert max_timestamp_millis is not None
        return self._delete_oldest(eid, max_traces, max_timestamp_millis)

    def apply_retention(self, max_age_ms: int | None, max_traces: int | None,
                        experiment_id: str | None = None) -> int:
        """Delete traces older than ``max_age_ms`` and, per experiment, the oldest beyond
        ``max_traces``. ``None`` (or 0) disables either rule. Returns how many were deleted."""
        with self.read() as conn:
            if experiment_id is not None:
                exp_ids = [experiment_row(conn, experiment_id).experiment_id]
            else:
                exp_ids = list(conn.execute(select(experiments.c.experiment_id)).scalars())
        total = 0
        for eid in exp_ids:
            if max_age_ms:
                total += self._delete_oldest(eid, None, now_ms() - max_age_ms - 1)
            if max_traces:
                with self.read() as conn:
                    count = conn.execute(select(experiments.c.trace_count)
                                         .where(experiments.c.experiment_id == eid)).scalar_one()
                if count > max_traces:
                    total += self._delete_oldest(eid, count - max_traces, None)
        return total

    def _delete_oldest(self, eid: int, limit: int | None, max_time: int | None) -> int:
        total = 0
        while limit is None or total < limit:
            size = RETENTION_CHUNK if limit is None else min(RETENTION_CHUNK, limit - total)
            stmt = select(traces.c.trace_id).where(traces.c.experiment_id == eid)
            if max_time is not None:
                stmt = stmt.where(traces.c.request_time <= max_time)
            done = self._delete_where(stmt.order_by(traces.c.request_time, traces.c.trace_id).limit(size))
            total += done
            if done < size:
                break
        return total

    def _delete_where(self, id_select: Select[tuple[str]]) -> int:
        """Delete the traces ``id_select`` names (one transaction); returns the count."""
        with self.write() as tx:
            conn = tx.conn
            rows = conn.execute(id_select.add_columns(traces.c.experiment_id, traces.c.request_time)).all()
            if not rows:
                return 0
            ids = [r.trace_id for r in rows]
            conn.execute(insert(trace_tombstones), [  # how the deletion reaches the lake
                {"trace_id": r.trace_id, "seq": tx.seq, "experiment_id": r.experiment_id,
                 "request_time": r.request_time} for r in rows])
            prefixes = _offloaded_prefixes(conn, ids)
            for part in chunked(ids):
                conn.execute(delete(spans).where(spans_of_any(part)))
            for table in (trace_tags, trace_metadata, assessments, traces):
                conn.execute(delete(table).where(table.c.trace_id.in_(ids)))
            per_exp: dict[int, int] = {}
            for r in rows:
                per_exp[r.experiment_id] = per_exp.get(r.experiment_id, 0) + 1
            conn.execute(update(experiments).where(experiments.c.experiment_id == bindparam("b_exp"))
                         .values(trace_count=experiments.c.trace_count - bindparam("b_n")),
                         [{"b_exp": e, "b_n": n} for e, n in per_exp.items()])
        for prefix in prefixes:
            self.artifacts.delete_tree(prefix)
        return len(ids)


def _offloaded_prefixes(conn: Connection, ids: Sequence[str]) -> list[str]:
    """The artifact folder of each trace that has offloaded spans."""
    stmt = (select(spans.c.trace_id, func.min(spans.c.content_uri))
            .where(spans_of_any(list(ids)), spans.c.content_uri.is_not(None))
            .group_by(spans.c.trace_id))
    return [uri.rsplit("/spans/", 1)[0] for _, uri in conn.execute(stmt)]
