"""Engines for the two supported databases.

- ``sqlite:///PATH``: WAL (readers never block the writer), ``synchronous=FULL`` (a write is
  acknowledged only after it is durable; group commit keeps that cheap), a busy timeout so a
  small write from a request thread waits for the writer instead of failing, foreign keys on.
  Write transactions start with ``BEGIN IMMEDIATE`` (see ``WRITE``): a deferred transaction
  that reads first and then writes can fail with "database is locked" even with a busy
  timeout, because SQLite cannot upgrade its snapshot once another writer has committed.
- ``postgresql://...``: rewritten to the psycopg 3 driver, pooled, pre-pinged.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from tracelake.errors import InvalidRequest

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Page cache per connection: a pool holds up to 40 connections, so memory adds up; the OS
# caches the file anyway.
SQLITE_CACHE_KIB = 8 * 1024
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000  # ~40 MB of WAL between checkpoints

# Execution option for connections that will write: on SQLite it makes the transaction
# take the write lock up front (BEGIN IMMEDIATE). Harmless elsewhere.
WRITE = {"tracelake_write": True}


def parse_store_uri(uri: str) -> URL:
    """Validate a store URI and return it with the driver tracelake uses.

    Raises ``InvalidRequest`` for anything but ``sqlite:///PATH`` and ``postgresql://...``.
    """
    try:
        url = make_url(uri)
    except ArgumentError:
        raise InvalidRequest(
            f"Invalid store URI {uri!r}: expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
        ) from None
    backend = url.get_backend_name()
    driver = url.get_driver_name()
    if backend == "sqlite" and driver in ("pysqlite", ""):
        if not url.database or url.database == ":memory:":
            raise InvalidRequest(
                f"Invalid store URI {uri!r}: SQLite needs a file path (sqlite:///PATH); "
                "an in-memory database cannot be shared by the writer and the readers"
            )
        return url.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres") and driver in ("psycopg", "psycopg2", ""):
        return url.set(drivername="postgresql+psycopg")
    raise InvalidRequest(
        f"Unsupported store URI scheme {url.drivername!r} in {uri!r}: "
        "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
    )


def dialect_name(uri: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a valid store URI."""
    return parse_store_uri(uri).get_backend_name()


def make_engine(uri: str, *, sqlite_cache_kib: int = SQLITE_CACHE_KIB, **kwargs: Any) -> Engine:
    """Create the engine for a store URI (see the module docstring for the settings).
    ``sqlite_cache_kib``: SQLite's page cache per connection."""
    url = parse_store_uri(uri)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_cache_kib, **kwargs)
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 20, "pool_pre_ping": True}
    options.update(kwargs)
    return create_engine(url, **options)


def _sqlite_engine(url: URL, cache_kib: int, **kwargs: Any) -> Engine:
    options: dict[str, Any] = {
        "pool_size": 8,
        "max_overflow": 32,
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    }
    options.update(kwargs)
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own
        # transaction handling would defer it and cannot do BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        # Checkpoint less often: each checkpoint syncs the database file inside some
        # writer's commit; the WAL itself is still synced at every commit (durability).
        cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("tracelake_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
