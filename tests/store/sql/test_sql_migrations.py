"""Migrations: programmatic upgrade to head, store tables equal to schema.py, the Default experiment."""
from __future__ import annotations

import warnings
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from tracelake.store.migrations import current_revision, head_revision, upgrade
from tracelake.store.sql.engine import make_engine
from tracelake.store.sql.schema import metadata
from tracelake.store.sql.store import SqlStore


def test_upgrade_reaches_head_and_is_idempotent(store_uri: str) -> None:
    assert current_revision(store_uri) is None
    upgrade(store_uri)
    upgrade(store_uri)
    assert current_revision(store_uri) == head_revision()


def test_migrated_schema_matches_schema_module(store_uri: str) -> None:
    upgrade(store_uri)
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            # Only the store's tables: other parts (auth) add their own tables in later revisions.
            # Expression indexes are not reflected by SQLAlchemy: they are checked by name below.
            opts = {"compare_type": True,
                    "include_name": lambda name, kind, parents: (kind != "table" or name in metadata.tables)
                    and name not in EXPRESSION_INDEXES,
                    "include_object": lambda obj, name, kind, reflected, other: name not in EXPRESSION_INDEXES}
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
                warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
                diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
            if conn.dialect.name == "sqlite":
                names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='index'"))}
            else:
                names = {r[0] for r in conn.execute(text("SELECT indexname FROM pg_indexes"))}
    finally:
        engine.dispose()
    assert diff == []
    assert EXPRESSION_INDEXES <= names


EXPRESSION_INDEXES = {"ix_traces_exp_duration"}


def test_default_experiment_is_zero_and_user_experiments_start_at_one(store_uri: str, tmp_path: Path) -> None:
    upgrade(store_uri, artifact_root=str(tmp_path / "root"))
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT experiment_id, name, artifact_location FROM experiments")).all()
    finally:
        engine.dispose()
    assert [(r[0], r[1]) for r in rows] == [(0, "Default")]
    assert rows[0][2] == f"{tmp_path}/root/0"
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "other"))
    try:
        assert store.create_experiment("first") == "1"
        assert store.create_experiment("second") == "2"
        # The location chosen at the first start stays.
        assert store.get_experiment("0").artifact_location == f"{tmp_path}/root/0"
        assert store.get_experiment("1").artifact_location == f"{tmp_path}/other/1"
    finally:
        store.close()
