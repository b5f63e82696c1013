"""Read-only queries behind the web UI: experiment overviews, changed traces (live update),
sessions, metric series, and a compact span index for huge traces.

Plain functions taking a ``SqlStore``. Every query is set-based, binds its values, and walks
an existing index (never a scan that grows with the number of traces):

==============================  =================================================
query                           index
==============================  =================================================
last activity per experiment    ``ix_traces_exp_time`` (a max() seek per row)
error rate (7 days)             ``rollups`` primary key (minutes, not traces)
changed traces                  ``ix_traces_seq`` (``seq > watermark``)
sessions, newest first          ``ix_traces_exp_time`` walked backwards, then
                                ``ix_traces_session`` for the sessions found
span index                      ``spans`` primary key (the trace_key prefix)
==============================  =================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, func, literal, or_, select

from tracelake.entities import Span, TraceInfo
from tracelake.errors import InvalidRequest, NotFound, TracelakeError
from tracelake.store.base import Page
from tracelake.store.filter_grammar import parse_filter
from tracelake.store.sql.core import (
    decode_token,
    encode_token,
    exp_id_int,
    experiment_row,
    norm_trace_id,
    spans_of,
    spans_of_any,
)
from tracelake.store.sql.rollups import LATENCY_BUCKETS_MS, percentile
from tracelake.store.sql.schema import experiments, rollups, spans, traces
from tracelake.store.sql.search import compile_filter
from tracelake.store.sql.spanrows import span_from_row
from tracelake.store.sql.store import SqlStore
from tracelake.store.sql.tracerows import load_trace_infos

ERROR_RATE_WINDOW_MINUTES = 7 * 24 * 60
MAX_SPAN_PAGE = 20_000
_SESSION_SCAN_CHUNK = 1000
_SESSION_SCAN_LIMIT = 20_000  # rows of traces one sessions page may walk before it hands back a token


# -- experiments ----------------------------------------------------------------------

@dataclass(slots=True)
class ExperimentOverview:
    experiment_id: str
    name: str
    creation_time: int
    trace_count: int
    last_trace_time: int | None
    requests_7d: int
    errors_7d: int

    @property
    def error_rate(self) -> float | None:
        return self.errors_7d / self.requests_7d if self.requests_7d else None


def active_experiment_ids(store: SqlStore) -> list[str]:
    """Ids of every active experiment (the candidates a caller's read grants are checked against)."""
    e = experiments.c
    with store.read() as conn:
        return [str(r) for r in conn.execute(select(e.experiment_id).where(e.lifecycle_stage == "active")
                                             .order_by(e.experiment_id)).scalars()]


def experiment_overviews(store: SqlStore, now_ms: int, limit: int = 1000,
                         experiment_ids: list[str] | None = None) -> list[ExperimentOverview]:
    """Active experiments, most recently active first, with counts and a 7-day error rate; only
    those of ``experiment_ids`` when given (None: all)."""
    if experiment_ids is not None and not experiment_ids:
        return []
    since = now_ms // 60_000 - ERROR_RATE_WINDOW_MINUTES
    e = experiments.c
    last = (select(func.max(traces.c.request_time)).where(traces.c.experiment_id == e.experiment_id)
            .scalar_subquery())
    window = and_(rollups.c.experiment_id == e.experiment_id, rollups.c.minute >= since)
    requests = select(func.coalesce(func.sum(rollups.c.requests), 0)).where(window).scalar_subquery()
    errors = select(func.coalesce(func.sum(rollups.c.errors), 0)).where(window).scalar_subquery()
    query = (select(e.experiment_id, e.name, e.creation_time, e.trace_count, last.label("last_time"),
                    requests.label("requests"), errors.label("errors"))
             .where(e.lifecycle_stage == "active"))
    if experiment_ids is not None:
        query = query.where(e.experiment_id.in_(sorted({exp_id_int(x) for x in experiment_ids})))
    inner = query.subquery()
    stmt = (select(inner).order_by(func.coalesce(inner.c.last_time, inner.c.creation_time).desc(),
                                   inner.c.experiment_id.desc()).limit(limit))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
    return [ExperimentOverview(str(r.experiment_id), r.name, r.creation_time, int(r.trace_count or 0),
                               r.last_time, int(r.requests or 0), int(r.errors or 0)) for r in rows]


def experiment_summary(store: SqlStore, experiment_id: str) -> tuple[str, int]:
    """Name and trace count of an active experiment (``NotFound`` otherwise)."""
    with store.read() as conn:
        row = experiment_row(conn, experiment_id)
    if row.lifecycle_stage != "active":
        raise NotFound(f"Experiment '{experiment_id}' is deleted")
    return row.name, int(row.trace_count or 0)


# -- live update ----------------------------------------------------------------------

@dataclass(slots=True)
class Changes:
    traces: list[TraceInfo]
    seq: int  # pass back as ``since_seq`` next time
    more: bool  # more changes than ``limit``: reload rather than patch


def current_seq(store: SqlStore) -> int:
    """The newest change sequence of any trace (a seek on ``ix_traces_seq``)."""
    with store.read() as conn:
        return int(conn.execute(select(func.max(traces.c.seq))).scalar() or 0)


def changed_traces(store: SqlStore, experiment_id: str, since_seq: int, filter_string: str | None,
                   limit: int = 200) -> Changes:
    """Traces of the experiment that changed after ``since_seq`` (new, updated, re-tagged,
    assessed) and match the filter, oldest change first. Cheap to poll: nothing changed
    means one index seek."""
    eid = exp_id_int(experiment_id)
    condition = compile_filter(parse_filter(filter_string))
    # ``experiment_id + 0``: keeps the planner off the experiment indexes (which would read
    # every trace of the experiment and sort) and on ``ix_traces_seq``, a short range scan.
    stmt = (select(traces).where(traces.c.seq > since_seq, traces.c.experiment_id + 0 == eid, condition)
            .order_by(traces.c.seq).limit(limit + 1))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
        more = len(rows) > limit
        rows = rows[:limit]
        if rows:
            seq = rows[-1].seq
        else:  # nothing of ours changed: move the watermark anyway so the next poll stays a seek
            seq = max(since_seq, int(conn.execute(select(func.max(traces.c.seq))).scalar() or 0))
        return Changes(load_trace_infos(conn, rows), int(seq), more)


# -- sessions -------------------------------------------------------------------------

@dataclass(slots=True)
class SessionSummary:
    session_id: str
    turns: int
    first_time: int
    last_time: int
    errors: int
    total_tokens: int | None
    cost: float | None
    user_id: str | None
    last_request: str | None  # start of the newest turn's request preview


def sessions_page(store: SqlStore, experiment_id: str, max_results: int = 50,
                  page_token: str | None = None) -> Page[SessionSummary]:
    """Sessions ordered by their newest trace, newest first, keyset-paged.

    Walks the experiment's traces newest first (``ix_traces_exp_time``); a session's first
    appearance in that walk is its newest trace, so sessions come out in order without
    grouping every trace. Stats are aggregated for the sessions found only
    (``ix_traces_session``). A page token is the walk's position; a session that also has
    traces before that position was listed on an earlier page and is skipped.
    """
    if not 1 <= max_results <= 500:
        raise InvalidRequest("max_results must be between 1 and 500")
    eid = exp_id_int(experiment_id)
    cursor: tuple[int, str] | None = None
    if page_token:
        token = decode_token(page_token, "sessions")
        if token.get("e") != eid:
            raise InvalidRequest("The page token belongs to another experiment")
        cursor = (int(token["t"]), str(token["i"]))
    t = traces.c
    found: list[SessionSummary] = []
    scanned = 0
    with store.read() as conn:
        experiment_row(conn, eid)
        has_any = conn.execute(select(t.trace_id).where(t.experiment_id == eid, t.session_id.is_not(None))
                               .limit(1)).first()
        if has_any is None:
            return Page([], None)
        while len(found) < max_results and scanned < _SESSION_SCAN_LIMIT:
            stmt = (select(t.trace_id, t.request_time, t.session_id)
                    .where(t.experiment_id == eid, t.session_id.is_not(None)))
            if cursor is not None:
                stmt = stmt.where(t.request_time <= cursor[0],
                                  or_(t.request_time < cursor[0], t.trace_id < cursor[1]))
            rows = conn.execute(stmt.order_by(t.request_time.desc(), t.trace_id.desc())
                                .limit(_SESSION_SCAN_CHUNK)).all()
            if not rows:
                return Page(found, None)
            scanned += len(rows)
            known = {s.session_id for s in found}
            order: list[str] = []
            first_row: dict[str, Any] = {}
            for r in rows:
                if r.session_id not in known and r.session_id not in first_row:
                    first_row[r.session_id] = r
                    order.append(r.session_id)
            stats = _session_stats(conn, eid, order, cursor)
            for sid in order:
                summary = stats.get(sid)
                if summary is None:  # listed on an earlier page
                    continue
                found.append(summary)
                if len(found) == max_results:
                    last = first_row[sid]
                    return Page(found, _session_token(eid, last.request_time, last.trace_id))
            cursor = (rows[-1].request_time, rows[-1].trace_id)
        if len(rows) < _SESSION_SCAN_CHUNK:
            return Page(found, None)
    return Page(found, _session_token(eid, cursor[0], cursor[1]) if cursor else None)


def _session_token(eid: int, request_time: int, trace_id: str) -> str:
    return encode_token({"k": "sessions", "e": eid, "t": request_time, "i": trace_id})


def _session_stats(conn: Connection, eid: int, session_ids: list[str],
                   cursor: tuple[int, str] | None) -> dict[str, SessionSummary]:
    if not session_ids:
        return {}
    t = traces.c
    if cursor is None:
        seen = literal(0)
    else:  # has a trace at or before the walk's position: shown already
        seen = func.max(case((or_(t.request_time > cursor[0],
                                  and_(t.request_time == cursor[0], t.trace_id >= cursor[1])), 1), else_=0))
    stmt = (select(t.session_id, func.count().label("turns"), func.min(t.request_time).label("first"),
                   func.max(t.request_time).label("last"),
                   func.sum(case((t.state == "ERROR", 1), else_=0)).label("errors"),
                   func.sum(t.total_tokens).label("tokens"), func.sum(t.cost).label("cost"),
                   func.max(t.user_id).label("user_id"), seen.label("seen"))
            .where(t.experiment_id == eid, t.session_id.in_(session_ids)).group_by(t.session_id))
    stats = {r.session_id: r for r in conn.execute(stmt) if not r.seen}
    if not stats:
        return {}
    newest = (select(t.session_id, func.substr(t.request_preview, 1, 200).label("preview"))
              .where(t.experiment_id == eid, t.session_id.in_(list(stats)))
              .order_by(t.session_id, t.request_time.desc()))
    previews: dict[str, str | None] = {}
    for r in conn.execute(newest):
        previews.setdefault(r.session_id, r.preview)
    return {sid: SessionSummary(sid, int(r.turns), int(r.first), int(r.last), int(r.errors or 0),
                                None if r.tokens is None else int(r.tokens), r.cost, r.user_id, previews.get(sid))
            for sid, r in stats.items()}


@dataclass(slots=True)
class Turn:
    info: TraceInfo
    inputs: str | None  # the root span's inputs and outputs, JSON text
    outputs: str | None


def session_turns(store: SqlStore, experiment_id: str, session_id: str, limit: int = 500) -> list[Turn]:
    """The traces of a session in time order, with their root spans' inputs and outputs."""
    eid = exp_id_int(experiment_id)
    t = traces.c
    stmt = (select(traces).where(t.experiment_id == eid, t.session_id == session_id)
            .order_by(t.request_time, t.trace_id).limit(limit))
    with store.read() as conn:
        rows = conn.execute(stmt).all()
        infos = load_trace_infos(conn, rows)
        roots = {r.trace_id: r.root_span_id for r in rows if r.root_span_id}
        content: dict[str, Span] = {}
        ids = list(roots)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            for row in conn.execute(select(spans).where(spans_of_any(part), spans.c.parent_span_id.is_(None))):
                if roots.get(row.trace_id) == row.span_id:
                    content[row.trace_id] = _full_span(store, row)
    return [Turn(info, getattr(content.get(info.trace_id), "inputs", None),
                 getattr(content.get(info.trace_id), "outputs", None)) for info in infos]


# -- metrics --------------------------------------------------------------------------

@dataclass(slots=True)
class SeriesPoint:
    minute: int  # first epoch minute of the bucket
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    _buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS), repr=False)


_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


def step_for(minutes: int, max_points: int = 120) -> int:
    """A round bucket width (minutes) that gives at most ``max_points`` points."""
    need = max(1, math.ceil(minutes / max_points))
    return next((s for s in _STEPS if s >= need), need)


def metric_series(store: SqlStore, experiment_id: str, end_minute: int, minutes: int) -> tuple[int, list[SeriesPoint]]:
    """Dense per-bucket metrics for the ``minutes`` before ``end_minute`` (exclusive), read from
    the rollups; percentiles come from the merged latency histograms. Returns (step, points)."""
    step = step_for(minutes)
    end = (end_minute // step + 1) * step
    start = end - math.ceil(minutes / step) * step
    eid = exp_id_int(experiment_id)
    points = [SeriesPoint(m) for m in range(start, end, step)]
    stmt = (select(rollups).where(rollups.c.experiment_id == eid, rollups.c.minute >= start,
                                  rollups.c.minute < end))
    with store.read() as conn:
        experiment_row(conn, eid)
        rows = conn.execute(stmt).all()
    for row in rows:
        p = points[(row.minute - start) // step]
        p.requests += row.requests
        p.errors += row.errors
        p.input_tokens += row.input_tokens
        p.output_tokens += row.output_tokens
        p.cost += row.cost
        for i, n in enumerate(orjson.loads(row.latency_buckets) or []):
            if i < len(p._buckets):
                p._buckets[i] += n
    for p in points:
        if p.requests:
            p.latency_p50_ms = percentile(p._buckets, 0.50)
            p.latency_p95_ms = percentile(p._buckets, 0.95)
            p.latency_p99_ms = percentile(p._buckets, 0.99)
    return step, points


# -- spans ----------------------------------------------------------------------------

@dataclass(slots=True)
class SpanIndexPage:
    """Index columns of a page of spans (no content), in start order."""

    rows: list[Any]
    next_page_token: str | None
    request_time: int  # the trace's start (ms): the base the UI measures offsets from


def span_index(store: SqlStore, trace_id: str, limit: int = 5000, page_token: str | None = None) -> SpanIndexPage:
    """The spans of a trace without their content: what a tree and a waterfall need."""
    tid = norm_trace_id(trace_id)
    if not 1 <= limit <= MAX_SPAN_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_SPAN_PAGE}")
    s = spans.c
    stmt = select(s.span_id, s.parent_span_id, s.name, s.span_type, s.start_time_ns, s.end_time_ns,
                  s.status_code, s.input_tokens, s.output_tokens, s.total_tokens, s.cost).where(spans_of(tid))
    if page_token:
        token = decode_token(page_token, "span_index")
        if token.get("t") != tid:
            raise InvalidRequest("The span page token belongs to another trace")
        start, span_id = int(token["s"]), str(token["i"])
        stmt = stmt.where(s.start_time_ns >= start, or_(s.start_time_ns > start, s.span_id > span_id))
    stmt = stmt.order_by(s.start_time_ns, s.span_id).limit(limit + 1)
    with store.read() as conn:
        request_time = conn.execute(select(traces.c.request_time).where(traces.c.trace_id == tid)).scalar()
        if request_time is None:
            raise NotFound(f"Trace '{tid}' not found")
        rows = conn.execute(stmt).all()
    token_out = None
    if len(rows) > limit:
        rows = rows[:limit]
        token_out = encode_token({"k": "span_index", "t": tid, "s": rows[-1].start_time_ns, "i": rows[-1].span_id})
    return SpanIndexPage(rows, token_out, int(request_time))


def span_detail(store: SqlStore, trace_id: str, span_id: str) -> Span:
    """One span with its content (read back from artifact storage when it was offloaded)."""
    tid = norm_trace_id(trace_id)
    with store.read() as conn:
        row = conn.execute(select(spans).where(spans_of(tid), spans.c.span_id == span_id)).first()
    if row is None:
        raise NotFound(f"Span '{span_id}' not found in trace '{tid}'")
    return _full_span(store, row)


def _full_span(store: SqlStore, row: Any) -> Span:
    if row.content_uri is None:
        return span_from_row(row)
    try:
        content = orjson.loads(store.artifacts.read_bytes(row.content_uri))
    except (TracelakeError, OSError, orjson.JSONDecodeError):
        content = {"inputs": None, "outputs": None, "attributes": None, "events": None}
    return span_from_row(row, content)


__all__ = [
    "Changes", "ExperimentOverview", "SeriesPoint", "SessionSummary", "SpanIndexPage", "Turn",
    "changed_traces", "current_seq", "experiment_overviews", "experiment_summary", "metric_series",
    "session_turns", "sessions_page", "span_detail", "span_index", "step_for",
]
