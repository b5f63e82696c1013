"""Alembic environment: online only, on the engine that ``upgrade()`` passes in."""
from __future__ import annotations

from alembic import context
from sqlalchemy import text

from tracelake.store.sql.engine import WRITE

# Any constant: PostgreSQL servers starting together must not migrate concurrently.
_PG_MIGRATION_LOCK = 7_346_211


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        raise RuntimeError("tracelake migrations run through tracelake.store.migrations.upgrade(uri)")
    with engine.connect().execution_options(**WRITE) as connection:
        context.configure(
            connection=connection,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need batch mode
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("tracelake migrations do not support offline (SQL script) mode")
run_migrations_online()
