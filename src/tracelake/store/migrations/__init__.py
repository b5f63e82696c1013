"""Database migrations (Alembic), run programmatically: no alembic.ini is needed.

``upgrade(uri)`` brings a database to the newest schema; the server calls it at start and
``tracelake db upgrade`` calls it on demand. New revisions go in ``versions/`` (write the
operations out; never import ``schema.py`` from a revision, it moves on).
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, update

from tracelake.store.sql.engine import WRITE, make_engine

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic ``Config`` built in code; ``engine`` is handed to ``env.py``."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(uri: str, revision: str = "head", artifact_root: str | None = None) -> None:
    """Upgrade the database at ``uri`` to ``revision`` (idempotent).

    With ``artifact_root`` the Default experiment (created by the first revision without a
    location, since only the server knows its root) gets ``{artifact_root}/0``.
    """
    engine = make_engine(uri)
    try:
        command.upgrade(alembic_config(engine), revision)
        if artifact_root is not None:
            set_default_artifact_location(engine, artifact_root)
    finally:
        engine.dispose()


def set_default_artifact_location(engine: Engine, artifact_root: str) -> None:
    """Give the Default experiment ``{artifact_root}/0`` unless it already has a location."""
    from tracelake.store.artifacts import join_uri, normalize_root
    from tracelake.store.sql.schema import experiments

    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(
            update(experiments)
            .where(experiments.c.experiment_id == 0, experiments.c.artifact_location == "")
            .values(artifact_location=join_uri(normalize_root(artifact_root), "0"))
        )


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(uri: str) -> str | None:
    """The revision the database at ``uri`` is at (None for an empty database)."""
    engine = make_engine(uri)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


__all__ = ["SCRIPT_LOCATION", "alembic_config", "current_revision", "head_revision",
           "set_default_artifact_location", "upgrade"]
