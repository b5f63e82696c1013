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
from tracelake.store.sql.core import SEQ_KEY, plain_rows
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
    spans: dict[str, list[Any]] = field(default_factory=dict)  # SPANS columns (change_seq = span seq)
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
    def _spans(self, conn: Connection, low: int, high: int) -> dict[str, list[Any]]:
        """SPANS columns (Python lists), built column-wise from plain driver tuples: a chunk is
        tens of thousands of rows, and per-row dicts then per-column passes over them cost
        more than the query (py-spy on the ingest bench)."""
        stmt = (select(*(spans.c[name] for name in _SPAN_SOURCE), traces.c.experiment_id, traces.c.request_time)
                .select_from(spans.join(traces, spans.c.trace_key == traces.c.trace_key))
                .where(spans.c.seq > low, spans.c.seq <= high)
                .order_by(spans.c.seq, spans.c.trace_key, spans.c.span_id))
        rows = plain_rows(conn, stmt)
        if not rows:
            return {name: [] for name in SPANS.schema.names}
        (trace_id, span_id, parent, name, kind, span_type, start, end, status, message, inputs, outputs,
         attributes, events, model, in_tokens, out_tokens, total_tokens, cost, content_uri, seq,
         experiment_id, request_time) = (list(c) for c in zip(*rows))
        for i, uri in enumerate(content_uri):
            if uri:
                content = self._content(uri) or {}
                inputs[i], outputs[i] = content.get("inputs"), content.get("outputs")
                attributes[i], events[i] = content.get("attributes"), content.get("events")
        return {
            "trace_id": trace_id,
            "span_id": span_id,
            "parent_span_id": parent,
            "experiment_id": [str(e) for e in experiment_id],
            "request_date": [t // MS_PER_DAY for t in request_time],
            "name": name,
            "kind": kind,
            "span_type": span_type,
            "start_time_unix_nano": start,
            "end_time_unix_nano": end,
            "start_time": [t // 1000 for t in start],
            "status_code": status,
            "status_message": message,
            "attributes": [_attribute_map(a) if a else [] for a in attributes],
            "events": [_events(e) if e else [] for e in events],
            "inputs": inputs,
            "outputs": outputs,
            "model": model,
            "input_tokens": in_tokens,
            "output_tokens": out_tokens,
            "total_tokens": total_tokens,
            "cost": cost,
            "change_seq": seq,
        }


_SPAN_SOURCE = ("trace_id", "span_id", "parent_span_id", "name", "kind", "span_type", "start_time_ns", "end_time_ns",
                "status_code", "status_message", "inputs", "outputs", "attributes", "events", "model",
                "input_tokens", "output_tokens", "total_tokens", "cost", "content_uri", "seq")
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
    if not isinstance(data, dict):
        return []
    # JSON object keys are strings; most values are too (one call per value is the cost here).
    return [(k, v) if type(v) is str else (k, _as_text(v)) for k, v in data.items()]


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
    return columns_to_arrow({fld.name: [r.get(fld.name) for r in rows] for fld in schema}, schema)


def columns_to_arrow(data: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """Build a table of ``schema`` from Python columns (times as integers: us, or days for dates)."""
    columns = []
    for fld in schema:
        values = data[fld.name]
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


def spans_table(columns: dict[str, list[Any]]) -> pa.Table:
    return columns_to_arrow(columns, SPANS.schema)


def assessments_table(rows: list[dict[str, Any]]) -> pa.Table:
    return to_arrow(rows, ASSESSMENTS.schema)


__all__ = ["ChangeReader", "ChangeSet", "ChunkLimits", "assessments_table", "spans_table", "to_arrow",
           "traces_table"]

