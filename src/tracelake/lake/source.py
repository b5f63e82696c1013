"""Reading what changed in the SQL store since a watermark, as Arrow tables for the lake.

The store numbers its write transactions (``server_state.trace_seq``, taken under the
store's write lock, so values become visible in commit order) and stamps each trace with
the seq of its last change (``traces.seq``) and of its creation (``traces.first_seq``),
each span with the seq that added it (``spans.seq``; spans never change), and each deleted
trace with a tombstone (``trace_tombstones``). Everything with ``low < seq <= high`` is the
change set of a chunk; a trace changed again later simply shows up again in a later chunk.

``plan()`` picks ``high`` so that a chunk holds about ``max_traces`` trace changes and
``max_spans`` new spans (one transaction's rows are never split), which bounds the work of
one sync step whatever the backlog.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import Connection, Table, and_, cast, delete, select
from sqlalchemy.types import BigInteger

from tracelake.errors import NotFound
from tracelake.lake.tables import ASSESSMENTS, SPANS, TRACES
from tracelake.store.sql.core import SEQ_KEY
from tracelake.store.sql.schema import (assessments, server_state, spans, trace_metadata, trace_tags,
                                        trace_tombstones, traces)
from tracelake.store.sql.store import SqlStore

log = logging.getLogger("tracelake.lake")

MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    max_traces: int = 5_000
    max_spans: int = 50_000


@dataclass(slots=True)
class ChangeSet:
    """The store's changes with ``low < seq <= high``, as lake rows (Python columns)."""

    low: int
    high: int
    traces: list[dict[str, Any]] = field(default_factory=list)  # TRACES rows + "_first_seq"
    spans: list[dict[str, Any]] = field(default_factory=list)  # SPANS rows (change_seq = span seq)
    assessments: list[dict[str, Any]] = field(default_factory=list)  # ASSESSMENTS rows (change_seq = trace seq)
    tombstones: list[tuple[str, int]] = field(default_factory=list)  # (trace_id, seq)


class ChangeReader:
    """Reads change sets from a ``SqlStore`` (SQLite or PostgreSQL)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def current_seq(self) -> int:
        """The newest committed change sequence value."""
        with self.store.engine.connect() as conn:
            return _counter(conn)

    def plan(self, low: int, limits: ChunkLimits) -> int | None:
        """The ``high`` end of the next chunk after ``low``; None when nothing changed."""
        with self.store.engine.connect() as conn:
            current = _counter(conn)
            if current <= low:
                return None
            caps = [current]
            for table, limit in ((traces, limits.max_traces), (spans, limits.max_spans),
                                 (trace_tombstones, limits.max_traces)):
                # The seq of the limit-th change after low: a chunk ends there, whole transactions only.
                cap = conn.execute(select(table.c.seq).where(table.c.seq > low).order_by(table.c.seq)
                                   .offset(limit - 1).limit(1)).scalar()
                if cap is not None:
                    caps.append(int(cap))
            return min(caps)

    def read(self, low: int, high: int) -> ChangeSet:
        """Every change with ``low < seq <= high``, read in one snapshot."""
        out = ChangeSet(low, high)
        with self.store.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                changed = and_(traces.c.seq > low, traces.c.seq <= high)
                out.traces, out.assessments = self._traces(conn, changed)
                out.spans = self._spans(conn, low, high)
                out.tombstones = [(r.trace_id, int(r.seq)) for r in conn.execute(
                    select(trace_tombstones.c.trace_id, trace_tombstones.c.seq)
                    .where(trace_tombstones.c.seq > low, trace_tombstones.c.seq <= high))]
        return out

    def prune_tombstones(self, upto: int) -> int:
        """Forget tombstones every lake table has applied (``seq <= upto``)."""
        with self.store.transaction() as conn:
            return conn.execute(delete(trace_tombstones).where(trace_tombstones.c.seq <= upto)).rowcount

    # -- traces and assessments ------------------------------------------------------------
    def _traces(self, conn: Connection, changed: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        root = spans.alias("root")
        stmt = (select(traces, root.c.inputs.label("root_inputs"), root.c.outputs.label("root_outputs"),
                       root.c.content_uri.label("root_content_uri"))
                .select_from(traces.outerjoin(root, and_(root.c.trace_key == traces.c.trace_key,
                                                         root.c.span_id == traces.c.root_span_id)))
                .where(changed).order_by(traces.c.seq, traces.c.trace_id))
        rows = conn.execute(stmt).all()
        if not rows:
            return [], []
        tags = _kv(conn, trace_tags, changed)
        meta = _kv(conn, trace_metadata, changed)
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        found: list[dict[str, Any]] = []
        a_stmt = (select(assessments, traces.c.experiment_id.label("experiment_id"), traces.c.seq.label("trace_seq"))
                  .select_from(assessments.join(traces, assessments.c.trace_id == traces.c.trace_id))
                  .where(changed).order_by(assessments.c.create_time, assessments.c.assessment_id))
        for a in conn.execute(a_stmt):
            row = _assessment_row(a)
            found.append(row)
            by_trace[a.trace_id].append(row)
        out = []
        for r in rows:
            request, response = r.root_inputs, r.root_outputs
            if r.root_content_uri:
                request, response = self._offloaded_io(r.root_content_uri, request, response)
            out.append({
                "trace_id": r.trace_id,
                "experiment_id": str(r.experiment_id),
                "client_request_id": r.client_request_id,
                "request_time": r.request_time * 1000,
                "request_date": r.request_time // MS_PER_DAY,
                "state": r.state,
                "execution_duration_ms": r.execution_duration,
                "trace_name": r.name,
                "request": request if request is not None else r.request_preview,
                "response": response if response is not None else r.response_preview,
                "request_preview": r.request_preview,
                "response_preview": r.response_preview,
                "session_id": r.session_id,
                "user_id": r.user_id,
                "trace_metadata": meta.get(r.trace_id, []),
                "tags": tags.get(r.trace_id, []),
                "assessments": [{k: a[k] for k in _NESTED_ASSESSMENT} for a in by_trace.get(r.trace_id, [])],
                "span_count": r.span_count,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "total_tokens": r.total_tokens,
                "cost": r.cost,
                "change_seq": int(r.seq),
                "_first_seq": int(r.first_seq),
            })
        return out, found

    def _offloaded_io(self, uri: str, request: str | None, response: str | None) -> tuple[str | None, str | None]:
        content = self._content(uri)
        if content is None:
            return request, response
        return content.get("inputs"), content.get("outputs")

    def _content(self, uri: str) -> dict[str, Any] | None:
        try:
            return orjson.loads(self.store.artifacts.read_bytes(uri))
        except (NotFound, orjson.JSONDecodeError) as exc:
            log.warning("span content at %s is unreadable, landing the span without it: %s", uri, exc)
            return None

    # -- spans ---------------------------------------------------------------------------
    def _spans(self, conn: Connection, low: int, high: int) -> list[dict[str, Any]]:
        stmt = (select(spans, traces.c.experiment_id.label("experiment_id"),
                       traces.c.request_time.label("trace_request_time"))
                .select_from(spans.join(traces, spans.c.trace_id == traces.c.trace_id))
                .where(spans.c.seq > low, spans.c.seq <= high)
                .order_by(spans.c.seq, spans.c.trace_id, spans.c.span_id))
        out = []
        for s in conn.execute(stmt):
            inputs, outputs, attributes, events = s.inputs, s.outputs, s.attributes, s.events
            if s.content_uri:
                content = self._content(s.content_uri) or {}
                inputs, outputs = content.get("inputs"), content.get("outputs")
                attributes, events = content.get("attributes"), content.get("events")
            out.append({
                "trace_id": s.trace_id,
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "experiment_id": str(s.experiment_id),
                "request_date": s.trace_request_time // MS_PER_DAY,
                "name": s.name,
                "kind": s.kind,
                "span_type": s.span_type,
                "start_time_unix_nano": s.start_time_ns,
                "end_time_unix_nano": s.end_time_ns,
                "start_time": s.start_time_ns // 1000,
                "status_code": s.status_code,
                "status_message": s.status_message,
                "attributes": _attribute_map(attributes),
                "events": _events(events),
                "inputs": inputs,
                "outputs": outputs,
                "model": s.model,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "total_tokens": s.total_tokens,
                "cost": s.cost,
                "change_seq": int(s.seq),
            })
        return out


_NESTED_ASSESSMENT = ("assessment_id", "assessment_name", "assessment_type", "span_id", "value", "rationale",
                      "source_type", "source_id", "create_time", "last_update_time", "valid")


def _counter(conn: Connection) -> int:
    value = conn.execute(select(cast(server_state.c.value, BigInteger)).where(server_state.c.key == SEQ_KEY)).scalar()
    return int(value or 0)


def _kv(conn: Connection, table: Table, changed: Any) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    stmt = (select(table.c.trace_id, table.c.key, table.c.value)
            .select_from(table.join(traces, table.c.trace_id == traces.c.trace_id))
            .where(changed).order_by(table.c.trace_id, table.c.key))
    for r in conn.execute(stmt):
        out[r.trace_id].append((r.key, r.value))
    return out


def _assessment_row(a: Any) -> dict[str, Any]:
    return {
        "assessment_id": a.assessment_id,
        "trace_id": a.trace_id,
        "experiment_id": str(a.experiment_id),
        "span_id": a.span_id,
        "assessment_name": a.name,
        "assessment_type": a.kind,
        "value": a.value,
        "rationale": a.rationale,
        "source_type": a.source_type,
        "source_id": a.source_id,
        "create_time": a.create_time * 1000,
        "last_update_time": a.last_update_time * 1000,
        "metadata": _string_map(a.metadata),
        "error": a.error,
        "overrides": a.overrides,
        "valid": bool(a.valid),
        "change_seq": int(a.trace_seq),
    }


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _string_map(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    data = orjson.loads(text)
    return [(str(k), _as_text(v)) for k, v in data.items()] if isinstance(data, dict) else []


def _attribute_map(text: str | None) -> list[tuple[str, str]]:
    return _string_map(text)


def _events(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    return [{"time_unix_nano": e.get("time_ns"), "name": e.get("name"),
             "attributes": [(str(k), _as_text(v)) for k, v in (e.get("attributes") or {}).items()]}
            for e in orjson.loads(text)]


# -- to Arrow ---------------------------------------------------------------------------------

_TIME_COLUMNS = {"request_time", "start_time", "create_time", "last_update_time"}  # microseconds


def to_arrow(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table of ``schema`` from row dicts whose times are integers (us, or days for dates)."""
    columns = []
    for fld in schema:
        values = [r.get(fld.name) for r in rows]
        if fld.name in _TIME_COLUMNS:
            columns.append(pa.array(values, pa.int64()).cast(fld.type))
        elif pa.types.is_date32(fld.type):
            columns.append(pa.array(values, pa.int32()).cast(fld.type))
        elif pa.types.is_list(fld.type) and pa.types.is_struct(fld.type.value_type):
            columns.append(_list_of_structs(values, fld.type))
        else:
            columns.append(pa.array(values, fld.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _list_of_structs(values: list[Any], typ: pa.ListType) -> pa.Array:
    struct = typ.value_type
    time_fields = [f.name for f in struct if pa.types.is_timestamp(f.type)]
    if time_fields:  # the nested times are integers (us): convert to datetimes pyarrow accepts
        import datetime as dt

        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        values = [[{**item, **{k: epoch + dt.timedelta(microseconds=item[k]) for k in time_fields
                               if item.get(k) is not None}} for item in v] if v is not None else None
                  for v in values]
    return pa.array(values, typ)


def traces_table(rows: list[dict[str, Any]]) -> pa.Table:
    return to_arrow(rows, TRACES.schema)


def spans_table(rows: list[dict[str, Any]]) -> pa.Table:
    return to_arrow(rows, SPANS.schema)


def assessments_table(rows: list[dict[str, Any]]) -> pa.Table:
    return to_arrow(rows, ASSESSMENTS.schema)


__all__ = ["ChangeReader", "ChangeSet", "ChunkLimits", "assessments_table", "spans_table", "to_arrow",
           "traces_table"]

