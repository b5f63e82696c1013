"""What every part of the SQL store shares: the engine, write transactions that bump the
change sequence, id normalisation, chunking, opaque page tokens and dialect-specific inserts.

Write transactions and the change sequence: ``StoreCore.write()`` opens a transaction and,
first thing, increments the ``trace_seq`` counter row in ``server_state``. That single row is
the write lock of the store: on PostgreSQL the row lock is held until commit, on SQLite the
transaction began with BEGIN IMMEDIATE. Writers are therefore serialised, so (1) the
read-validate-write steps of ingest see a stable database, and (2) sequence values become
visible in commit order, which is what a ``seq > watermark`` reader needs.
"""
from __future__ import annotations

import base64
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Row,
    Select,
    Table,
    Text,
    cast,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.dialects import sqlite as sqlite_dialect

from tracelake.entities.trace import TRACE_ID_PREFIX
from tracelake.errors import InvalidRequest, NotFound
from tracelake.store.artifacts import Artifacts
from tracelake.store.sql.engine import WRITE
from tracelake.store.sql.schema import experiments, server_state, spans, traces

T = TypeVar("T")

SEQ_KEY = "trace_seq"
IN_CHUNK = 900  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits
_HEX32 = re.compile(r"[0-9a-f]{32}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def spans_of(trace_id: str) -> ColumnElement[bool]:
    """WHERE clause for the spans of one trace (normalised id): spans are keyed by the
    trace's integer ``trace_key`` (see schema.py), found through the traces primary key."""
    return spans.c.trace_key == select(traces.c.trace_key).where(traces.c.trace_id == trace_id).scalar_subquery()


def spans_of_any(trace_ids: Sequence[str]) -> ColumnElement[bool]:
    """WHERE clause for the spans of any of these traces (normalised ids)."""
    return spans.c.trace_key.in_(select(traces.c.trace_key).where(traces.c.trace_id.in_(trace_ids)))


def next_trace_key(conn: Connection) -> int:
    """The first free ``trace_key``. Call inside a write transaction (writers are serialised),
    and hand out consecutive keys from it to the traces the transaction creates."""
    return int(conn.execute(select(func.coalesce(func.max(traces.c.trace_key), 0))).scalar_one()) + 1


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def norm_trace_id(trace_id: str) -> str:
    """``tr-`` + 32 hex, from either that or the bare 32 hex (the OTel id)."""
    if not isinstance(trace_id, str):
        raise InvalidRequest(f"Invalid trace id {trace_id!r}")
    tid = trace_id.strip()
    tid = tid.removeprefix(TRACE_ID_PREFIX)
    tid = tid.lower()
    if not _HEX32.fullmatch(tid):
        raise InvalidRequest(f"Invalid trace id {trace_id!r}: expected 'tr-' followed by 32 hex digits")
    return TRACE_ID_PREFIX + tid


def exp_id_int(experiment_id: str | int) -> int:
    """Experiment ids are strings of integers on the wire and integers in the database."""
    try:
        value = int(str(experiment_id).strip())
    except ValueError:
        raise NotFound(f"No experiment with id {experiment_id!r}") from None
    if value < 0:
        raise NotFound(f"No experiment with id {experiment_id!r}")
    return value


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_token(token: str, kind: str) -> dict[str, Any]:
    """Decode a token made by ``encode_token`` whose ``k`` field is ``kind``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise InvalidRequest(f"Invalid page token {token!r}") from None
    if not isinstance(payload, dict) or payload.get("k") != kind:
        raise InvalidRequest(f"Invalid page token {token!r}")
    return payload


def dialect_insert(conn: Connection, table: Table) -> Any:
    """``INSERT`` with the dialect's ``ON CONFLICT`` support."""
    if conn.dialect.name == "postgresql":
        return pg_dialect.insert(table)
    return sqlite_dialect.insert(table)


@dataclass(slots=True)
class WriteTx:
    conn: Connection
    seq: int  # the change-sequence value for every trace this transaction touches


@dataclass(slots=True)
class Limits:
    max_spans_per_trace: int
    max_traces_per_experiment: int
    max_trace_bytes: int
    offload_span_bytes: int


class StoreCore:
    """State shared by the store's parts (see ``SqlStore``)."""

    engine: Engine
    artifacts: Artifacts
    artifact_root: str
    limits: Limits

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """A write transaction holding the store's write lock (see the module docstring)."""
        bump = (
            update(server_state)
            .where(server_state.c.key == SEQ_KEY)
            .values(value=cast(cast(server_state.c.value, BigInteger) + 1, Text))
            .returning(server_state.c.value)
        )
        with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
            seq = int(conn.execute(bump).scalar_one())
            yield WriteTx(conn, seq)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction that changes no trace (experiments, masking rules)."""
        with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn


def in_chunks(conn: Connection, make_stmt: Any, ids: Iterable[Any]) -> list[Any]:
    """Run ``make_stmt(chunk)`` over chunks of ``ids`` and concatenate the rows."""
    rows: list[Any] = []
    id_list = list(ids)
    for part in chunked(id_list):
        rows.extend(conn.execute(make_stmt(list(part))).all())
    return rows


def experiment_row(conn: Connection, experiment_id: str | int, active: bool = False) -> Row[Any]:
    """The ``experiments`` row; ``NotFound`` when absent, ``InvalidRequest`` when ``active``
    is asked for and the experiment is deleted."""
    eid = exp_id_int(experiment_id)
    row = conn.execute(select(experiments).where(experiments.c.experiment_id == eid)).first()
    if row is None:
        raise NotFound(f"No experiment with id '{experiment_id}'")
    if active and row.lifecycle_stage != "active":
        raise InvalidRequest(f"Experiment '{experiment_id}' is deleted")
    return row


def plain_rows(conn: Connection, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """``stmt``'s rows as the driver's plain tuples, in ``conn``'s transaction.

    For bulk reads (a 10,000-span trace, a lake sync chunk): building SQLAlchemy ``Row``
    objects and unpacking them again costs more than the query. Only for columns that need no
    result conversion on SQLite or PostgreSQL (text, integers, floats)."""
    compiled = stmt.compile(dialect=conn.dialect)
    params: Any = compiled.construct_params()
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()



_FAST_SQL: dict[tuple[str, str, tuple[str, ...], str], tuple[str, str, str]] = {}


def fast_insert(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]],
                conflict: str = "error") -> None:
    """A bulk INSERT straight on the DBAPI cursor (the ingest hot path).

    SQLAlchemy's per-row parameter processing costs more than SQLite's whole insert, so the
    rows go as tuples or lists: as multi-row INSERTs on SQLite (see below), through COPY on
    PostgreSQL (see ``_copy_insert``). ``conflict``: ``"error"``, ``"nothing"`` (ON CONFLICT DO
    NOTHING) or ``"update:<col>"`` (on a primary-key conflict set ``<col>`` to the new value; the
    rows must then have distinct keys). Only for values that need no type processing
    (str, int, float, None).
    """
    if not rows:
        return
    key = (conn.dialect.name, table.name, columns, conflict)
    parts = _FAST_SQL.get(key)
    if parts is None:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        head = f'INSERT INTO "{table.name}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) VALUES '
        group = "(" + ", ".join([mark] * len(columns)) + ")"
        if conflict == "nothing":
            tail = " ON CONFLICT DO NOTHING"
        elif conflict.startswith("update:"):
            col = conflict.split(":", 1)[1]
            pk = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
            tail = f' ON CONFLICT ({pk}) DO UPDATE SET "{col}" = excluded."{col}"'
        elif conflict == "error":
            tail = ""
        else:
            raise ValueError(f"unknown conflict mode {conflict!r}")
        parts = _FAST_SQL[key] = (head, group, tail)
    head, group, tail = parts
    if conn.dialect.name == "postgresql":
        _copy_insert(conn, table, columns, rows, tail)
        return
    # Straight on the DBAPI cursor, inside the connection's transaction: rows may be lists.
    # Many rows per statement, not executemany: sqlite3 releases the interpreter lock around
    # every step, so executemany takes the lock back once per ROW, and with request threads
    # running each take can wait a whole switch interval (5 ms). One multi-row statement
    # takes it back once per hundreds of rows (bench: 37 -> a few µs wall per span).
    per = max(1, min(SQLITE_ROWS_PER_INSERT, _sqlite_max_variables(conn) // len(columns)))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), per):
            part = rows[start:start + per]
            cursor.execute(head + ", ".join([group] * len(part)) + tail, list(chain.from_iterable(part)))
    finally:
        cursor.close()


SQLITE_ROWS_PER_INSERT = 500
_SQLITE_DEFAULT_MAX_VARIABLES = 32766  # SQLite >= 3.32; older builds allow 999


def _sqlite_max_variables(conn: Connection) -> int:
    driver = conn.connection.driver_connection
    try:
        return int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]
    except (AttributeError, sqlite3.Error):  # Python < 3.11
        return 999 if sqlite3.sqlite_version_info < (3, 32) else _SQLITE_DEFAULT_MAX_VARIABLES


def _copy_insert(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]],
                 tail: str) -> None:
    """PostgreSQL: COPY into a session-local staging table, then one INSERT ... SELECT (which
    keeps ON CONFLICT). About half the time of executemany, a sixth of its client CPU."""
    staging = f"_tl_in_{table.name}"
    cols = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{table.name}") ON COMMIT DELETE ROWS')
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f'COPY "{staging}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{staging}"{tail}')
        cursor.execute(f'DELETE FROM "{staging}"')
    finally:
        cursor.close()
