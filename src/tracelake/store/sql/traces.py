"""Reading traces (info, spans paged by start time, search, count) and trace tags.

Search and count use ``tracelake.store.sql.search`` (the filter grammar and query builder)
when it is present; until then a minimal fallback (no filter, newest first) serves.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from concurrent.futures import ThreadPoolExecutor
from collections import namedtuple
from dataclasses import dataclass, field
from operator import itemgetter
from types import ModuleType
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, or_, select

from tracelake.entities import Trace, TraceInfo
from tracelake.errors import InvalidRequest, NotFound, TracelakeError
from tracelake.store.base import Page
from tracelake.store.sql.assessments import touch_trace
from tracelake.store.sql.core import (
    StoreCore,
    decode_token,
    encode_token,
    exp_id_int,
    norm_trace_id,
    plain_rows,
    spans_of,
)
from tracelake.store.sql.schema import spans, trace_tags, traces
from tracelake.store.sql.spanrows import span_from_row
from tracelake.store.sql.tracerows import load_trace_infos, write_tags_and_metadata

log = logging.getLogger(__name__)
MAX_SEARCH_RESULTS = 50_000
CONTENT_READERS = 8  # parallel reads of offloaded span content per trace

SpanContent = dict[str, "str | None"]
_NO_CONTENT: SpanContent = {"inputs": None, "outputs": None, "attributes": None, "events": None}

# The spans columns ``read_trace`` returns, in this order (callers unpack rows by position).
SPAN_READ_COLUMNS = (
    "span_id", "parent_span_id", "name", "start_time_ns", "end_time_ns", "status_code", "status_message",
    "span_type", "inputs", "outputs", "attributes", "events", "input_tokens", "output_tokens", "total_tokens",
    "content_uri", "kind", "model", "cost",
)
_SPAN_READ = [spans.c[name] for name in SPAN_READ_COLUMNS]
_SPAN_ID, _CONTENT_URI = SPAN_READ_COLUMNS.index("span_id"), SPAN_READ_COLUMNS.index("content_uri")
_START_TIME = SPAN_READ_COLUMNS.index("start_time_ns")
_START = itemgetter(_START_TIME)
_SpanRow = namedtuple("_SpanRow", SPAN_READ_COLUMNS)  # what span_from_row reads by name


@dataclass(slots=True)
class TraceRows:
    """A trace as ``read_trace`` finds it: the info, one page of span rows (``SPAN_READ_COLUMNS``)
    and, for rows with a ``content_uri``, their content read back (``{"inputs", "outputs",
    "attributes", "events"}`` as JSON texts) by span id."""

    info: TraceInfo
    spans: list[tuple[Any, ...]]
    content: dict[str, SpanContent] = field(default_factory=dict)
    next_span_page_token: str | None = None


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
        found = self.read_trace(trace_id, max_spans, span_page_token)
        tid, content = found.info.trace_id, found.content
        return Trace(info=found.info,
                     spans=[span_from_row(row, content.get(row.span_id), trace_id=tid)
                            for row in map(_SpanRow._make, found.spans)],
                     next_span_page_token=found.next_span_page_token)

    def read_trace(self, trace_id: str, max_spans: int | None = None,
                   span_page_token: str | None = None) -> TraceRows:
        """``get_trace`` without building ``Span`` entities: the rows as the database returns
        them (columns ``SPAN_READ_COLUMNS``) and the offloaded content they point at, for
        callers that turn 10,000 spans straight into JSON."""
        tid = norm_trace_id(trace_id)
        if max_spans is not None and max_spans < 1:
            raise InvalidRequest("max_spans must be at least 1")
        stmt = select(*_SPAN_READ).where(spans_of(tid))
        if span_page_token:
            token = decode_token(span_page_token, "spans")
            if token.get("t") != tid:
                raise InvalidRequest("The span page token belongs to another trace")
            start, span_id = int(token["s"]), str(token["i"])
            stmt = stmt.where(or_(spans.c.start_time_ns > start,
                                  and_(spans.c.start_time_ns == start, spans.c.span_id > span_id)))
        if max_spans is not None:
            stmt = stmt.order_by(spans.c.start_time_ns, spans.c.span_id).limit(max_spans + 1)
        else:
            # The whole trace: in span-id order (the primary key's, so no sort in the database,
            # which would copy every row with all its content into a temporary b-tree), then a
            # stable sort by start time here, so ties stay in span-id order.
            stmt = stmt.order_by(spans.c.span_id)
        with self.read() as conn:
            info = _info(conn, tid)  # first: it begins the read transaction both queries see
            rows = plain_rows(conn, stmt)
        if max_spans is None:
            rows.sort(key=_START)
        next_token = None
        if max_spans is not None and len(rows) > max_spans:
            rows = rows[:max_spans]
            last = rows[-1]
            next_token = encode_token({"k": "spans", "t": tid, "s": last[_START_TIME], "i": last[_SPAN_ID]})
        return TraceRows(info, rows, self._offloaded_content(rows), next_token)

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

    def _offloaded_content(self, rows: list[Any]) -> dict[str, SpanContent]:
        """The content blobs of offloaded spans, by span id, read in parallel (S3 round trips)."""
        uris = {row[_SPAN_ID]: row[_CONTENT_URI] for row in rows if row[_CONTENT_URI] is not None}
        if not uris:
            return {}
        if len(uris) == 1:
            return {span_id: self._read_content(uri) for span_id, uri in uris.items()}
        with ThreadPoolExecutor(max_workers=min(CONTENT_READERS, len(uris)),
                                thread_name_prefix="span-content") as pool:
            return dict(zip(uris, pool.map(self._read_content, uris.values())))

    def _read_content(self, uri: str) -> SpanContent:
        try:
            content = orjson.loads(self.artifacts.read_bytes(uri))
        except (TracelakeError, OSError, orjson.JSONDecodeError) as exc:
            # A lost blob must not make the whole trace unreadable: show the span without content.
            log.warning("span content at %s is unreadable: %s", uri, exc)
            return dict(_NO_CONTENT)
        return content if isinstance(content, dict) else dict(_NO_CONTENT)


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
