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
from tracelake.entities import Span
from tracelake.store.base import SpanBatch
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


def test_span_trace_key_migration_keeps_every_span_findable(store_uri: str, tmp_path: Path) -> None:
    """0005 re-keys stored spans by their trace's integer key; the data stays readable and
    traces created afterwards get larger keys than every migrated one."""
    upgrade(store_uri, revision="0004_write_path_indexes")
    engine = make_engine(store_uri)
    try:
        with engine.begin() as conn:
            for n, (trace_hex, first_seq) in enumerate((("ab" * 16, 5), ("cd" * 16, 2))):
                conn.execute(text(
                    "INSERT INTO traces (trace_id, experiment_id, request_time, state, span_count, size_bytes, seq, "
                    "first_seq) VALUES (:t, 0, :rt, 'OK', 2, 0, :s, :s)"), {"t": f"tr-{trace_hex}", "rt": 1000 + n,
                                                                         "s": first_seq})
                for i in range(2):
                    conn.execute(text(
                        "INSERT INTO spans (trace_id, span_id, parent_span_id, name, span_type, kind, start_time_ns, "
                        "end_time_ns, status_code, status_message, inputs, seq) VALUES (:t, :s, :p, :name, 'LLM', "
                        "'INTERNAL', :start, :end, 'OK', '', :inputs, 1)"),
                        {"t": f"tr-{trace_hex}", "s": f"{n:08x}{i:08x}", "p": None if i == 0 else f"{n:08x}{0:08x}",
                         "name": f"span-{n}-{i}", "start": 10 + i, "end": 20 + i, "inputs": f'{{"n": {n}}}'})
    finally:
        engine.dispose()
    upgrade(store_uri)
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            keys = dict(conn.execute(text("SELECT trace_id, trace_key FROM traces")).all())
    finally:
        engine.dispose()
    assert keys == {"tr-" + "cd" * 16: 1, "tr-" + "ab" * 16: 2}  # numbered in creation (first_seq) order
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "root"))
    try:
        for n, trace_hex in enumerate(("ab" * 16, "cd" * 16)):
            trace = store.get_trace(trace_hex)
            assert [s.name for s in trace.spans] == [f"span-{n}-0", f"span-{n}-1"]
            assert trace.spans[0].inputs == f'{{"n": {n}}}'
            assert trace.spans[1].parent_span_id == trace.spans[0].span_id
        store.write_spans([SpanBatch("0", [Span(trace_id="ef" * 16, span_id="00000000000000aa", parent_span_id=None,
                                                 name="new", start_time_ns=1, end_time_ns=2)], [])])
        assert [s.name for s in store.get_trace("ef" * 16).spans] == ["new"]
    finally:
        store.close()
    engine = make_engine(store_uri)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT trace_key FROM traces WHERE trace_id = :t"),
                                {"t": "tr-" + "ef" * 16}).scalar_one() == 3
    finally:
        engine.dispose()


def test_span_trace_key_migration_downgrades_and_upgrades_again(store_uri: str, tmp_path: Path) -> None:
    from alembic import command

    from tracelake.store.migrations import alembic_config

    upgrade(store_uri)
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "root"))
    try:
        store.write_spans([SpanBatch("0", [Span(trace_id="ab" * 16, span_id="00000000000000aa", parent_span_id=None,
                                                 name="kept", start_time_ns=1, end_time_ns=2)], [])])
    finally:
        store.close()
    engine = make_engine(store_uri)
    try:
        command.downgrade(alembic_config(engine), "0004_write_path_indexes")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT trace_id, span_id, name FROM spans")).all() == [
                ("tr-" + "ab" * 16, "00000000000000aa", "kept")]
            if conn.dialect.name == "sqlite":
                names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='index'"))}
            else:
                names = {r[0] for r in conn.execute(text("SELECT indexname FROM pg_indexes"))}
        assert {"ix_spans_trace_start", "ix_spans_seq", "ix_traces_exp_duration"} <= names
        assert "ux_traces_trace_key" not in names
    finally:
        engine.dispose()
    upgrade(store_uri)
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "root"))
    try:
        assert [s.name for s in store.get_trace("ab" * 16).spans] == ["kept"]
    finally:
        store.close()
