"""Engines: URI validation, SQLite pragmas, the PostgreSQL driver."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tracelake.errors import InvalidRequest
from tracelake.store.sql.engine import WRITE, make_engine, parse_store_uri


@pytest.mark.parametrize("uri", [
    "mysql://u@h/db", "sqlite://", "sqlite:///:memory:", "not a uri", "oracle+cx://x", "sqlite+aiosqlite:///x.db",
])
def test_unsupported_uris_are_rejected_with_a_clear_message(store_uri: str, uri: str) -> None:
    with pytest.raises(InvalidRequest, match="URI"):
        parse_store_uri(uri)


def test_engine_uses_the_expected_driver(store_uri: str) -> None:
    engine = make_engine(store_uri)
    try:
        expected = "pysqlite" if store_uri.startswith("sqlite") else "psycopg"
        assert engine.dialect.driver == expected
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_connections_are_durable_and_patient(store_uri: str) -> None:
    """SQLite: WAL, synchronous=FULL, a busy timeout, foreign keys. PostgreSQL: durability is
    the server's configuration (the test cluster turns fsync off); the pool pre-pings."""
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            if engine.dialect.name != "sqlite":
                assert engine.pool._pre_ping  # type: ignore[attr-defined]
                return
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def test_write_connections_take_the_write_lock_up_front(store_uri: str) -> None:
    engine = make_engine(store_uri)
    try:
        with engine.connect().execution_options(**WRITE) as conn, conn.begin():
            conn.execute(text("CREATE TABLE IF NOT EXISTS t_probe (x INTEGER)"))
            conn.execute(text("INSERT INTO t_probe VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t_probe")).scalar_one() == 1
    finally:
        engine.dispose()
