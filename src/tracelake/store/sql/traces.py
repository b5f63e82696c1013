"""Reading traces (info, spans paged by start time, search, count) and trace tags.

Search and count use ``tracelake.store.sql.search`` (the filter grammar and query builder)
when it is present; until then a minimal fallback (no filter, newest first) serves.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, or_, select

from tracelake.entities import Span, Trace, TraceInfo
from tracelake.errors import InvalidRequest, NotFound, TracelakeError
from tracelake.store.base import Page
from tracelake.store.sql.assessments import touch_trace
from tracelake.store.sql.core import (
    StoreCore,
    decode_token,
    encode_token,
    exp_id_int,
    norm_trace_id,
)
from tracelake.store.sql.schema import spans, trace_tags, traces
from tracelake.store.sql.spanrows import span_from_row
from tracelake.store.sql.tracerows import load_trace_infos, write_tags_and_metadata

log = logging.getLogger(__name__)
MAX_SEARCH_RESULTS = 50_000


def _search_module() -> ModuleType | None:
    name = "tracelake.store.sql.search"
    if importlib.util.find_spec(name) is None:
        return None
    module = importlib.import_module(name)
    return module if hasattr(module, "build_search") and hasattr(module, "build_count") else None


class TracesMixin(StoreCore):
    def get_trace_info(self, trace_id: str) -> TraceInfo:
        tid = norm_trace_id(trace_id)
        with self.read() as conn:
            return _info(conn, tid)

    def get_trace(self, trace_id: str, max_spans: int | None = None,
                  span_page_token: str | None = None) -> Trace:
        """The trace with its spans in start-time order; ``max_spans`` pages through huge traces."""
        tid = norm_trace_id(trace_id)
        if max_spans is not None and max_spans < 1:
            raise InvalidRequest("max_spans must be at least 1")
        stmt = select(spans).where(spans.c.trace_id == tid)
        if span_page_token:
            token = decode_token(span_page_token, "spans")
            if token.get("t") != tid:
                raise InvalidRequest("The span page token belongs to another trace")
            start, span_id = int(token["s"]), str(token["i"])
            stmt = stmt.where(or_(spans.c.start_time_ns > start,
                                  and_(spans.c.start_time_ns == start, spans.c.span_id > span_id)))
        stmt = stmt.order_by(spans.c.start_time_ns, spans.c.span_id)
        if max_spans is not None:
            stmt = stmt.limit(max_spans + 1)
        with self.read() as conn:
            info = _info(conn, tid)
            rows = conn.execute(stmt).all()
        next_token = None
        if max_spans is not None and len(rows) > max_spans:
            rows = rows[:max_spans]
            last = rows[-1]
            next_token = encode_token({"k": "spans", "t": tid, "s": last.start_time_ns, "i": last.span_id})
        return Trace(info=info, spans=[self._span(row) for row in rows], next_span_page_token=next_token)

    def search_traces(self, experiment_ids: list[str], filter_string: str | None = None,
                      order_by: list[str] | None = None, max_results: int = 100,
                      page_token: str | None = None) -> Page[TraceInfo]:
        if not experiment_ids:
            raise InvalidRequest("search_traces needs at least one experiment id")
        if not 1 <= max_results <= MAX_SEARCH_RESULTS:
            raise InvalidRequest(f"max_results must be between 1 and {MAX_SEARCH_RESULTS}")
        module = _search_module()
        with self.read() as conn:
            if module is not None:
                plan = module.build_search(experiment_ids, filter_string, order_by, max_results, page_token)
                rows = conn.execute(plan.select).all()
                next_token = plan.next_token(rows)
            else:
                rows, next_token = _fallback_search(conn, experiment_ids, filter_string, order_by,
                                                    max_results, page_token)
            return Page(load_trace_infos(conn, rows[:max_results]), next_token)

    def count_traces(self, experiment_ids: list[str], filter_string: str | None = None) -> int:
        module = _search_module()
        if module is not None:
            stmt = module.build_count(experiment_ids, filter_string)
        else:
            _fallback_check(filter_string, None)
            stmt = select(func.count()).select_from(traces).where(
                traces.c.experiment_id.in_([exp_id_int(e) for e in experiment_ids]))
        with self.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        tid = norm_trace_id(trace_id)
        if not key:
            raise InvalidRequest("Tag key must be a non-empty string")
        if len(key) > 250:
            raise InvalidRequest("Tag key must be at most 250 characters")
        with self.write() as tx:
            touch_trace(tx.conn, tid, tx.seq)
            write_tags_and_metadata(tx.conn, {(tid, key): value}, {})

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        tid = norm_trace_id(trace_id)
        with self.write() as tx:
            touch_trace(tx.conn, tid, tx.seq)
            gone = tx.conn.execute(delete(trace_tags).where(trace_tags.c.trace_id == tid, trace_tags.c.key == key))
            if gone.rowcount == 0:
                raise NotFound(f"No tag '{key}' on trace '{tid}'")

    def _span(self, row: Any) -> Span:
        if row.content_uri is None:
            return span_from_row(row)
        try:
            content = orjson.loads(self.artifacts.read_bytes(row.content_uri))
        except (TracelakeError, OSError) as exc:
            # A lost blob must not make the whole trace unreadable: show the span without content.
            log.warning("span content at %s is unreadable: %s", row.content_uri, exc)
            content = {"inputs": None, "outputs": None, "attributes": None, "events": None}
        return span_from_row(row, content)


def _info(conn: Connection, trace_id: str) -> TraceInfo:
    row = conn.execute(select(traces).where(traces.c.trace_id == trace_id)).first()
    if row is None:
        raise NotFound(f"Trace '{trace_id}' not found")
    return load_trace_infos(conn, [row])[0]


def _fallback_check(filter_string: str | None, order_by: list[str] | None) -> None:
    if (filter_string and filter_string.strip()) or order_by:
        raise InvalidRequest("Trace filters and ordering need tracelake.store.sql.search, which is not installed")


def _fallback_search(conn: Connection, experiment_ids: list[str], filter_string: str | None,
                     order_by: list[str] | None, max_results: int,
                     page_token: str | None) -> tuple[list[Any], str | None]:
    """Newest first (request_time, trace_id), keyset-paged; no filter grammar."""
    _fallback_check(filter_string, order_by)
    stmt = select(traces).where(traces.c.experiment_id.in_([exp_id_int(e) for e in experiment_ids]))
    if page_token:
        token = decode_token(page_token, "traces")
        t, i = int(token["t"]), str(token["i"])
        stmt = stmt.where(or_(traces.c.request_time < t, and_(traces.c.request_time == t, traces.c.trace_id < i)))
    stmt = stmt.order_by(traces.c.request_time.desc(), traces.c.trace_id.desc()).limit(max_results + 1)
    rows = conn.execute(stmt).all()
    next_token = None
    if len(rows) > max_results:
        last = rows[max_results - 1]
        next_token = encode_token({"k": "traces", "t": last.request_time, "i": last.trace_id})
    return rows, next_token
