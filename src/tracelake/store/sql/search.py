"""Trace search in SQL: the filter AST compiled to SQLAlchemy Core, ordering and keyset paging.

User values only ever travel as bound parameters. Filters on tags, metadata, spans and
assessments are ``EXISTS`` semi-joins, so the outer query stays a scan of ``traces`` in
index order (``ix_traces_exp_time`` for the default ``timestamp_ms DESC``) that stops at
``LIMIT max_results + 1``.

Page tokens are keyset cursors: the sort-key values of the last row of a page plus its
``trace_id``, and a hash of the query they belong to. Rows that arrive between two pages
show up only if they sort after the cursor, so paging never repeats or skips a row.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, String, and_, func, literal, literal_column, or_, select, true, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from tracelake.errors import InvalidRequest
from tracelake.store.filter_grammar import (
    And,
    Comparison,
    FieldKind,
    Node,
    Op,
    Or,
    OrderKey,
    Scalar,
    Value,
    parse_filter,
    parse_order_by,
)
from tracelake.store.sql.schema import assessments, spans, trace_metadata, trace_tags, traces

__all__ = ["SearchPlan", "build_count", "build_search", "compile_filter"]

_TOKEN_VERSION = 1
_NO_DURATION = -1  # sort key of a NULL execution time (IN_PROGRESS): before every real duration
_END_TIME = traces.c.request_time + traces.c.execution_duration  # NULL while IN_PROGRESS

_ATTRIBUTE_COLUMNS: dict[str, ColumnElement[Any]] = {
    "trace_id": traces.c.trace_id,
    "status": traces.c.state,
    "timestamp_ms": traces.c.request_time,
    "execution_time_ms": traces.c.execution_duration,
    "end_time_ms": _END_TIME,
    "experiment_id": traces.c.experiment_id,
    "name": traces.c.name,
    "client_request_id": traces.c.client_request_id,
    "request_preview": traces.c.request_preview,
    "response_preview": traces.c.response_preview,
    "session_id": traces.c.session_id,
    "user": traces.c.user_id,
}
_SPAN_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": spans.c.name,
    "type": spans.c.span_type,
    "status": spans.c.status_code,
}


# -- filter compilation ---------------------------------------------------------------

def compile_filter(node: Node | None) -> ColumnElement[bool]:
    """The WHERE condition for a parsed filter, correlated to the ``traces`` table."""
    if node is None:
        return true()
    if isinstance(node, And):
        return and_(*(compile_filter(c) for c in node.clauses))
    if isinstance(node, Or):
        return or_(*(compile_filter(c) for c in node.clauses))
    return _comparison(node)


def _comparison(c: Comparison) -> ColumnElement[bool]:
    kind = c.field.kind
    if kind is FieldKind.ATTRIBUTE:
        return _compare(_ATTRIBUTE_COLUMNS[c.field.name], c)
    if kind is FieldKind.TEXT:
        span_text = or_(*(_compare(col, c) for col in (spans.c.name, spans.c.inputs, spans.c.outputs)))
        return or_(
            _compare(traces.c.request_preview, c),
            _compare(traces.c.response_preview, c),
            _span_exists(span_text),
        )
    if kind is FieldKind.SPAN:
        return _span_exists(_compare(_SPAN_COLUMNS[c.field.name], c))
    if kind in (FieldKind.TAG, FieldKind.METADATA):
        table = trace_tags if kind is FieldKind.TAG else trace_metadata
        return _keyed(table.c.trace_id, table.c.key == c.field.name, table.c.value, c)
    table = assessments  # FieldKind.FEEDBACK / EXPECTATION values are the stored kinds
    which = and_(table.c.kind == kind.value, table.c.name == c.field.name, table.c.valid == true())
    return _keyed(table.c.trace_id, which, table.c.value, c, values=_assessment_texts)


def _exists(trace_id: ColumnElement[Any], *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return select(trace_id).where(trace_id == traces.c.trace_id, *conditions).exists()


def _span_exists(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A span of the trace matches: spans are keyed by the trace's integer key (schema.py)."""
    return select(spans.c.span_id).where(spans.c.trace_key == traces.c.trace_key, *conditions).exists()


def _keyed(trace_id: ColumnElement[Any], which: ColumnElement[bool], value: ColumnElement[Any],
           c: Comparison, values: Callable[[Scalar], list[Scalar]] | None = None) -> ColumnElement[bool]:
    """A key/value child row (tag, metadata, assessment): IS NULL means "no such key";
    every other comparator means "has the key, and its value matches"."""
    if c.op is Op.IS_NULL:
        return ~_exists(trace_id, which)
    if c.op is Op.IS_NOT_NULL:
        return _exists(trace_id, which)
    return _exists(trace_id, which, _compare(value, c, values))


def _compare(col: ColumnElement[Any], c: Comparison,
             values: Callable[[Scalar], list[Scalar]] | None = None) -> ColumnElement[bool]:
    """``col <op> value``. With ``values``, ``=``/``!=``/``IN``/``NOT IN`` test membership in
    the several stored spellings of each value (used for assessment JSON)."""
    op = c.op
    if op is Op.IS_NULL:
        return col.is_(None)
    if op is Op.IS_NOT_NULL:
        return col.is_not(None)
    if op in (Op.IN, Op.NOT_IN) or (values is not None and op in (Op.EQ, Op.NE)):
        given = c.value if isinstance(c.value, tuple) else (c.value,)
        scalars = [v.value for v in given if v is not None]
        if values is not None:
            scalars = list(dict.fromkeys(s for v in scalars for s in values(v)))
        binds = [_bind(s) for s in scalars]
        return col.in_(binds) if op in (Op.IN, Op.EQ) else col.not_in(binds)
    assert isinstance(c.value, Value)
    value = c.value.value
    if op is Op.LIKE:
        return _case_sensitive_like(col, _bind(value), _bind(_like_to_glob(str(value))))
    if op is Op.ILIKE:
        return func.lower(col).like(func.lower(_bind(value)), escape="\\")
    bound = _bind(value)
    return {
        Op.EQ: col == bound, Op.NE: col != bound,
        Op.LT: col < bound, Op.LE: col <= bound, Op.GT: col > bound, Op.GE: col >= bound,
    }[op]


def _bind(value: Scalar) -> ColumnElement[Any]:
    # Typed from the Python value, not the column: a float bound as BIGINT would be rounded.
    if isinstance(value, bool):
        return literal(value, Boolean())
    if isinstance(value, int):
        return literal(value, BigInteger())
    if isinstance(value, float):
        return literal(value, Float())
    return literal(value, String())


def _assessment_texts(value: Scalar) -> list[Scalar]:
    """The stored JSON texts an assessment value literal matches.

    Rule: the literal's string form ``s`` (``true``/``false`` for booleans, the digits for
    numbers) matches an assessment whose JSON text is ``s`` itself or ``s`` as a JSON
    string. So ``= true``, ``= 'true'`` match JSON ``true`` and ``"true"``; ``= 'yes'``
    matches ``"yes"``; ``= 1`` matches ``1``, ``1.0`` and ``"1"``.
    """
    if isinstance(value, bool):
        forms = ["true" if value else "false"]
    elif isinstance(value, int):
        forms = [str(value), f"{value}.0"]
    elif isinstance(value, float):
        forms = [repr(value)] + ([str(int(value))] if value.is_integer() else [])
    else:
        forms = [value]
    texts: list[Scalar] = []
    for s in forms:
        texts += [s, json.dumps(s), json.dumps(s, ensure_ascii=False)]
    return texts


class _case_sensitive_like(FunctionElement[bool]):
    """``col LIKE pattern ESCAPE '\\'``, case-sensitive everywhere: SQLite's LIKE ignores
    ASCII case, so there it becomes ``GLOB`` with the same pattern translated."""

    inherit_cache = True
    name = "case_sensitive_like"


@compiles(_case_sensitive_like)
def _compile_like(element: _case_sensitive_like, compiler: SQLCompiler, **kw: Any) -> str:
    col, pattern, _glob = element.clauses.clauses
    return compiler.process(col.like(pattern, escape="\\"), **kw)


@compiles(_case_sensitive_like, "sqlite")
def _compile_like_sqlite(element: _case_sensitive_like, compiler: SQLCompiler, **kw: Any) -> str:
    col, _pattern, glob = element.clauses.clauses
    return compiler.process(col.op("GLOB")(glob), **kw)


def _like_to_glob(pattern: str) -> str:
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "\\")
            out.append(f"[{ch}]" if ch in "*?[" else ch)
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


# -- ordering and keyset paging -------------------------------------------------------

def _end_time(row: Row[Any]) -> int:
    return _NO_DURATION if row.execution_duration is None else row.request_time + row.execution_duration


def _or_empty(col: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(col, literal("", String()))


def _or_no_duration(col: ColumnElement[Any]) -> ColumnElement[Any]:
    # a constant, not a bound parameter, so the expression index ix_traces_exp_duration matches
    return func.coalesce(col, literal_column(str(_NO_DURATION), BigInteger()))


# Sort expressions are never NULL (nullable columns are coalesced to a sentinel), so the
# order and the keyset comparison are the same on both databases. Each comes with the
# Python twin that reads the same value from a result row, for the page token.
_SORTS: dict[str, tuple[ColumnElement[Any], Callable[[Row[Any]], Any], type]] = {
    "timestamp_ms": (traces.c.request_time, lambda r: r.request_time, int),
    "execution_time_ms": (_or_no_duration(traces.c.execution_duration),
                          lambda r: _NO_DURATION if r.execution_duration is None else r.execution_duration, int),
    "end_time_ms": (_or_no_duration(_END_TIME), _end_time, int),
    "experiment_id": (traces.c.experiment_id, lambda r: r.experiment_id, int),
    "status": (traces.c.state, lambda r: r.state, str),
    "trace_id": (traces.c.trace_id, lambda r: r.trace_id, str),
    "name": (_or_empty(traces.c.name), lambda r: r.name or "", str),
    "client_request_id": (_or_empty(traces.c.client_request_id), lambda r: r.client_request_id or "", str),
    "session_id": (_or_empty(traces.c.session_id), lambda r: r.session_id or "", str),
    "user": (_or_empty(traces.c.user_id), lambda r: r.user_id or "", str),
}


@dataclass(frozen=True, slots=True)
class _SortKey:
    name: str
    expr: ColumnElement[Any]
    of_row: Callable[[Row[Any]], Any]
    py_type: type
    descending: bool


def _sort_key(key: OrderKey) -> _SortKey:
    expr, of_row, py_type = _SORTS[key.field]
    return _SortKey(key.field, expr, of_row, py_type, key.descending)


def _keys_for(order: tuple[OrderKey, ...]) -> tuple[_SortKey, ...]:
    keys = [_sort_key(k) for k in order]
    if all(k.name != "trace_id" for k in keys):
        keys.append(_sort_key(OrderKey("trace_id", order[0].descending)))
    return tuple(keys)


def _after(keys: tuple[_SortKey, ...], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after the cursor ``values`` in the order of ``keys``."""
    binds = [literal(v, BigInteger() if k.py_type is int else String()) for k, v in zip(keys, values)]
    if len({k.descending for k in keys}) == 1:
        # One direction: a row-value comparison, which a btree index can serve as a range.
        left, right = tuple_(*(k.expr for k in keys)), tuple_(*binds)
        return left < right if keys[0].descending else left > right
    alternatives = []
    for i, key in enumerate(keys):
        ties = [keys[j].expr == binds[j] for j in range(i)]
        step = key.expr < binds[i] if key.descending else key.expr > binds[i]
        alternatives.append(and_(*ties, step))
    return or_(*alternatives)


def _query_hash(experiment_ids: list[int], filter_string: str | None, keys: tuple[_SortKey, ...]) -> str:
    ident = [sorted(set(experiment_ids)), (filter_string or "").strip(), [[k.name, k.descending] for k in keys]]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]


def _encode_token(query: str, values: list[Any]) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "q": query, "k": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, query: str, keys: tuple[_SortKey, ...]) -> list[Any]:
    bad = InvalidRequest("Invalid page_token: it was not issued by this server's search_traces")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):  # also UnicodeDecodeError and JSONDecodeError
        raise bad from None
    if not isinstance(data, dict) or data.get("v") != _TOKEN_VERSION or not isinstance(data.get("q"), str):
        raise bad
    if data["q"] != query:
        raise InvalidRequest("Invalid page_token: it belongs to a search with other experiment_ids, "
                             "filter_string or order_by; repeat the search without a page_token")
    values = data.get("k")
    if (not isinstance(values, list) or len(values) != len(keys)
            or any(type(v) is not k.py_type for k, v in zip(keys, values))):
        raise bad
    return values


# -- the public plans -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SearchPlan:
    """A search page: run ``select``, then ``page(rows)`` and ``next_token(rows)``."""

    select: Select[Any]
    max_results: int
    _keys: tuple[_SortKey, ...] = field(repr=False)
    _query: str = field(repr=False)

    def page(self, rows: Sequence[Row[Any]]) -> list[Row[Any]]:
        """The rows of this page (the query fetches one extra to know whether more exist)."""
        return list(rows[: self.max_results])

    def next_token(self, rows: Sequence[Row[Any]]) -> str | None:
        """The token for the next page, or ``None`` when this page is the last."""
        if len(rows) <= self.max_results:
            return None
        last = rows[self.max_results - 1]
        return _encode_token(self._query, [k.of_row(last) for k in self._keys])


def build_search(experiment_ids: list[str], filter_string: str | None, order_by: list[str] | None,
                 max_results: int, page_token: str | None) -> SearchPlan:
    """Plan one page of ``search_traces``. Raises ``BadFilter`` / ``InvalidRequest``."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise InvalidRequest(f"max_results must be a positive integer, got {max_results!r}")
    ids = _experiment_ids(experiment_ids)
    condition = compile_filter(parse_filter(filter_string))
    keys = _keys_for(parse_order_by(order_by))
    query = _query_hash(ids, filter_string, keys)
    stmt = select(traces).where(_in_experiments(ids), condition)
    if page_token:
        stmt = stmt.where(_after(keys, _decode_token(page_token, query, keys)))
    stmt = stmt.order_by(*(k.expr.desc() if k.descending else k.expr.asc() for k in keys))
    return SearchPlan(stmt.limit(max_results + 1), max_results, keys, query)


def build_count(experiment_ids: list[str], filter_string: str | None) -> Select[Any]:
    """``SELECT count(*)`` of the traces matching the filter."""
    ids = _experiment_ids(experiment_ids)
    condition = compile_filter(parse_filter(filter_string))
    return select(func.count()).select_from(traces).where(_in_experiments(ids), condition)


def _experiment_ids(experiment_ids: list[str]) -> list[int]:
    if not experiment_ids:
        raise InvalidRequest("experiment_ids must name at least one experiment")
    texts = [str(e).strip() for e in experiment_ids]
    if not all(t.isascii() and t.isdigit() for t in texts):
        raise InvalidRequest(f"experiment_ids must be integers, got {list(experiment_ids)!r}")
    return [int(t) for t in texts]


def _in_experiments(ids: list[int]) -> ColumnElement[bool]:
    col = traces.c.experiment_id
    return col == ids[0] if len(set(ids)) == 1 else col.in_(sorted(set(ids)))

