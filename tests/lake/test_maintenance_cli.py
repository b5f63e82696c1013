"""Maintenance (compaction, checkpoint, vacuum) keeps rows and watermarks; the CLI commands."""
from __future__ import annotations

import orjson
import polars as pl
from click.testing import CliRunner
from deltalake import DeltaTable

from tests.lake.helpers import assert_lake_matches_store, ingest, read, spans_of_trace, table_path, watermark
from tracelake.commands import cli
from tracelake.lake.maintenance import maintain
from tracelake.lake.tables import SPANS, TRACES


def test_maintenance_compacts_checkpoints_and_vacuums(store, exp, sync, lake, lake_root) -> None:
    for _ in range(10):  # ten syncs: ten small files per table
        ingest(store, exp, [spans_of_trace(children=1)])
        sync.sync_once()
    before = watermark(lake_root, "spans")
    assert len(DeltaTable(table_path(lake_root, "spans")).file_uris()) == 10
    result = maintain(lake, SPANS, vacuum_retention_hours=0, min_files=8)
    assert result is not None and (result.files_before, result.files_removed, result.files_added) == (10, 10, 1)
    assert result.vacuumed == 10
    table = DeltaTable(table_path(lake_root, "spans"))
    assert len(table.file_uris()) == 1
    assert table.transaction_version("tracelake.sync") == before
    assert list((lake_root / "monitoring" / "spans" / "_delta_log").glob("*.checkpoint.parquet"))
    assert len(list((lake_root / "monitoring" / "spans").rglob("*.parquet"))) == 1 + 1  # data + checkpoint
    assert_lake_matches_store(store, lake_root)
    ingest(store, exp, [spans_of_trace()])  # the sync carries on after maintenance
    sync.sync_once()
    assert_lake_matches_store(store, lake_root)


def test_maintenance_leaves_few_files_alone(store, exp, sync, lake) -> None:
    ingest(store, exp, [spans_of_trace()])
    sync.sync_once()
    result = maintain(lake, TRACES, vacuum_retention_hours=168)
    assert result is not None and result.files_removed == 0 and result.vacuumed == 0


def test_cli_sync_once_then_sql(store, store_uri, exp, lake_root, tmp_path) -> None:
    ids = ingest(store, exp, [spans_of_trace() for _ in range(3)])
    runner = CliRunner()
    env = {"TRACELAKE_ARTIFACTS": str(tmp_path / "artifacts")}
    out = runner.invoke(cli, ["lake", "sync", "--once", "--store", store_uri, "--lake", str(lake_root)], env=env)
    assert out.exit_code == 0, out.output
    assert "synced 1 chunk(s): 3 trace rows, 12 spans" in out.output
    assert read(lake_root, "traces").height == 3
    out = runner.invoke(cli, ["sql", "--lake", str(lake_root), "--format", "json",
                              "SELECT trace_id, span_count FROM traces ORDER BY trace_id"])
    assert out.exit_code == 0, out.output
    assert orjson.loads(out.output) == [{"trace_id": t, "span_count": 4} for t in sorted(ids)]
    out = runner.invoke(cli, ["sql", "--lake", str(lake_root), "SELECT count(*) AS n FROM monitoring.spans"])
    assert out.output.split() == ["n", "--", "12"]
    out = runner.invoke(cli, ["sql", "--lake", str(lake_root), "DROP TABLE traces"])
    assert out.exit_code == 1 and "only read-only queries (SELECT) are allowed, not DROP" in out.output
    out = runner.invoke(cli, ["lake", "tables", "--lake", str(lake_root)])
    assert "tracelake.monitoring.traces\t3 rows" in out.output
    out = runner.invoke(cli, ["lake", "maintain", "--lake", str(lake_root)])
    assert out.exit_code == 0 and "tracelake.monitoring.spans" in out.output


def test_cli_sql_checks_a_users_grants(store, store_uri, exp, sync, lake_root) -> None:
    from tracelake.auth.grants import GrantStore
    from tracelake.auth.store import AuthStore

    ingest(store, exp, [spans_of_trace()])
    sync.sync_once()
    users = AuthStore(store.engine)
    users.create_user("ann", "password-123")
    GrantStore(users).set("user", "ann", "table", "tracelake.monitoring.traces", "SELECT")
    runner = CliRunner()
    base = ["sql", "--lake", str(lake_root), "--store", store_uri, "--user", "ann", "--format", "csv"]
    out = runner.invoke(cli, [*base, "SELECT count(*) AS n FROM traces"])
    assert out.exit_code == 0 and out.output.split() == ["n", "1"]
    out = runner.invoke(cli, [*base, "SELECT count(*) FROM spans"])
    assert out.exit_code == 1 and "SELECT permission on table tracelake.monitoring.spans" in out.output
    assert pl.read_delta(table_path(lake_root, "spans")).height == 4
