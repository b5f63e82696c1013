"""The lake sync against the store: rows land once, changes after landing reach the lake,
deletions leave it, a backlog goes in bounded chunks. Tables are read with Polars/DuckDB."""
from __future__ import annotations

import orjson
import polars as pl
import pytest
from deltalake import DeltaTable

from tests.lake.helpers import (assert_lake_matches_store, duck, ingest, read, spans_of_trace, table_path,
                                watermark)
from tracelake.entities import Assessment, AssessmentSource
from tracelake.lake.source import ChunkLimits
from tracelake.lake.sync import LakeSync


def test_new_traces_land_with_the_store_values(store, exp, sync, lake_root) -> None:
    ids = ingest(store, exp, [spans_of_trace(children=2) for _ in range(5)],
                 tags={"env": "prod"}, metadata={"mlflow.trace.user": "u1"}, client_request_id="req-1")
    result = sync.sync_once()
    assert (result.traces, result.spans) == (5, 15)
    assert_lake_matches_store(store, lake_root)
    traces = read(lake_root, "traces").sort("trace_id")
    for row in traces.iter_rows(named=True):
        info = store.get_trace_info(row["trace_id"])
        assert row["experiment_id"] == exp
        assert row["state"] == info.state == "OK"
        assert row["execution_duration_ms"] == info.execution_duration == 100
        assert int(row["request_time"].timestamp() * 1000) == info.request_time
        assert row["request_date"].isoformat() == "2023-11-14"
        assert row["request"] == '{"question": "hi"}' and row["response"] == '"hello"'
        assert row["client_request_id"] == "req-1"
        assert dict(row["tags"]) == info.tags and row["tags"]["env"] == "prod"
        assert dict(row["trace_metadata"]) == info.trace_metadata
        assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (20, 10, 30)
        assert row["span_count"] == 3
    assert sorted(traces["trace_id"].to_list()) == sorted(ids)
    spans = read(lake_root, "spans")
    llm = spans.filter(pl.col("span_type") == "LLM").row(0, named=True)
    assert llm["model"] == "gpt-test" and llm["input_tokens"] == 10 and llm["inputs"] == '{"p": 1}'
    root = spans.filter(pl.col("parent_span_id").is_null()).row(0, named=True)
    assert root["attributes"]["service"] == "tests" and orjson.loads(root["attributes"]["n"]) == 1
    assert root["end_time_unix_nano"] - root["start_time_unix_nano"] == 100_000_000


def test_a_second_sync_with_no_change_writes_nothing(store, exp, sync, lake_root) -> None:
    ingest(store, exp, [spans_of_trace()])
    sync.sync_once()
    version = DeltaTable(table_path(lake_root, "traces")).version()
    assert sync.sync_once().chunks == 0
    assert DeltaTable(table_path(lake_root, "traces")).version() == version


def test_tags_and_assessments_after_landing_update_the_one_row(store, exp, sync, lake_root) -> None:
    first, second = ingest(store, exp, [spans_of_trace(), spans_of_trace()])
    sync.sync_once()
    store.set_trace_tag(first, "reviewed", "yes")
    made = store.create_assessment(Assessment(assessment_id="", trace_id=second, name="correct", kind="feedback",
                                              value=True, rationale="matches",
                                              source=AssessmentSource("LLM_JUDGE", "judge-1")))
    sync.sync_once()
    traces = read(lake_root, "traces")
    assert traces.height == 2
    assert traces.filter(pl.col("trace_id") == first)["tags"].to_list()[0]["reviewed"] == "yes"
    nested = traces.filter(pl.col("trace_id") == second)["assessments"].to_list()[0]
    assert [(a["assessment_name"], a["value"], a["source_type"]) for a in nested] == [("correct", "true", "LLM_JUDGE")]
    assert duck(lake_root, "SELECT assessment_id, trace_id, rationale, source_id FROM a", a="assessments") == [
        (made.assessment_id, second, "matches", "judge-1")]
    store.update_assessment(second, made.assessment_id, {"rationale": "on reflection"})
    store.delete_trace_tag(first, "reviewed")
    sync.sync_once()
    assert duck(lake_root, "SELECT rationale FROM a", a="assessments") == [("on reflection",)]
    assert "reviewed" not in read(lake_root, "traces").filter(pl.col("trace_id") == first)["tags"].to_list()[0]
    store.delete_assessment(second, made.assessment_id)
    sync.sync_once()
    assert read(lake_root, "assessments").height == 0
    assert read(lake_root, "traces").filter(pl.col("trace_id") == second)["assessments"].to_list()[0] == []
    assert_lake_matches_store(store, lake_root)


def test_spans_arriving_later_complete_the_landed_trace(store, exp, sync, lake_root) -> None:
    root, *children = spans_of_trace(children=3)
    ingest(store, exp, [children[:2]])
    sync.sync_once()
    landed = read(lake_root, "traces").row(0, named=True)
    assert landed["state"] == "IN_PROGRESS" and landed["span_count"] == 2
    ingest(store, exp, [[children[2], root]])
    sync.sync_once()
    traces = read(lake_root, "traces")
    assert traces.height == 1
    row = traces.row(0, named=True)
    assert (row["state"], row["span_count"], row["request"]) == ("OK", 4, '{"question": "hi"}')
    assert read(lake_root, "spans").height == 4
    assert_lake_matches_store(store, lake_root)


def test_deleted_traces_leave_every_table(store, exp, sync, lake_root) -> None:
    ids = ingest(store, exp, [spans_of_trace() for _ in range(4)])
    store.create_assessment(Assessment(assessment_id="", trace_id=ids[0], name="q", kind="feedback", value=1))
    sync.sync_once()
    assert store.delete_traces(exp, trace_ids=ids[:2]) == 2
    result = sync.sync_once()
    assert result.deleted == 2
    assert sorted(read(lake_root, "traces")["trace_id"].to_list()) == sorted(ids[2:])
    assert set(read(lake_root, "spans")["trace_id"].to_list()) == set(ids[2:])
    assert read(lake_root, "assessments").height == 0
    assert_lake_matches_store(store, lake_root)
    with store.engine.connect() as conn:  # applied tombstones are forgotten
        assert conn.exec_driver_sql("SELECT count(*) FROM trace_tombstones").scalar() == 0


def test_retention_reaches_the_lake(store, exp, sync, lake_root) -> None:
    ingest(store, exp, [spans_of_trace(start_ms=i) for i in range(6)])
    sync.sync_once()
    assert store.apply_retention(max_age_ms=None, max_traces=2) == 4
    sync.sync_once()
    assert read(lake_root, "traces").height == 2
    assert_lake_matches_store(store, lake_root)


def test_a_trace_deleted_and_sent_again_lands_once(store, exp, sync, lake_root) -> None:
    spans = spans_of_trace()
    (tid,) = ingest(store, exp, [spans])
    sync.sync_once()
    store.delete_traces(exp, trace_ids=[tid])
    ingest(store, exp, [spans])  # deleted and re-sent before the next sync
    sync.sync_once()
    assert read(lake_root, "traces")["trace_id"].to_list() == [tid]
    assert read(lake_root, "spans").height == 4
    assert_lake_matches_store(store, lake_root)


def test_offloaded_span_content_lands_in_full(store, exp, sync, lake_root) -> None:
    big = orjson.dumps({"document": "x" * 5000}).decode()
    ingest(store, exp, [spans_of_trace(root_inputs=big)])
    sync.sync_once()
    assert read(lake_root, "traces")["request"].to_list() == [big]
    assert big in read(lake_root, "spans")["inputs"].to_list()


def test_a_backlog_syncs_in_bounded_chunks(store, exp, lake, lake_root) -> None:
    for _ in range(6):  # six transactions of ten traces
        ingest(store, exp, [spans_of_trace(children=1) for _ in range(10)])
    sync = LakeSync(store, lake, ChunkLimits(max_traces=20, max_spans=1000))
    result = sync.sync_once()
    assert result.chunks == 3
    assert max(c.rows for c in result.commits if c.table == "monitoring.traces") == 20
    assert_lake_matches_store(store, lake_root)
    history = DeltaTable(table_path(lake_root, "traces")).history()
    assert sum(1 for h in history if h["operation"] == "WRITE") == 3


def test_one_step_can_be_limited_to_a_number_of_chunks(store, exp, lake, lake_root) -> None:
    for _ in range(3):
        ingest(store, exp, [spans_of_trace(children=1) for _ in range(5)])
    sync = LakeSync(store, lake, ChunkLimits(max_traces=5, max_spans=1000))
    assert sync.sync_once(max_chunks=1).chunks == 1
    assert read(lake_root, "traces").height == 5
    sync.sync_once()
    assert_lake_matches_store(store, lake_root)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("step", ["read", "committed:traces", "committed:spans", "committed:assessments"])
def test_a_sync_that_fails_between_commits_resumes_exactly_once(store, exp, lake, lake_root, step) -> None:
    ids = ingest(store, exp, [spans_of_trace() for _ in range(3)])
    sync = LakeSync(store, lake)
    sync.sync_once()
    store.set_trace_tag(ids[0], "k", "v")
    store.create_assessment(Assessment(assessment_id="", trace_id=ids[1], name="q", kind="feedback", value=1))
    store.delete_traces(exp, trace_ids=[ids[2]])
    ingest(store, exp, [spans_of_trace() for _ in range(2)])

    def crash(event: str) -> None:
        if event == step:
            raise _Crash(event)
    with pytest.raises(_Crash):
        LakeSync(store, lake, hook=crash).sync_once()
    LakeSync(store, lake).sync_once()
    assert_lake_matches_store(store, lake_root)
    marks = {watermark(lake_root, name) for name in ("traces", "spans", "assessments")}
    assert len(marks) == 1
    assert read(lake_root, "traces").filter(pl.col("trace_id") == ids[0])["tags"].to_list()[0]["k"] == "v"


def test_two_syncs_of_the_same_store_never_duplicate(store, exp, lake, lake_root) -> None:
    ingest(store, exp, [spans_of_trace() for _ in range(4)])
    first, second = LakeSync(store, lake), LakeSync(store, lake)
    first.sync_once()
    assert second.sync_once().chunks == 0
    ingest(store, exp, [spans_of_trace()])
    second.sync_once()
    first.sync_once()
    assert_lake_matches_store(store, lake_root)


def test_a_sync_whose_lake_was_wiped_and_recreated_lands_everything_again(store, exp, sync, lake, lake_root) -> None:
    """The writer keeps tables open between steps; a table deleted and re-created under it (here
    by another sync, to a lower version) must be re-opened, not read from the stale snapshot."""
    import shutil

    for _ in range(3):  # three commits per table: the kept tables are at version 3
        ingest(store, exp, [spans_of_trace()])
        sync.sync_once()
    shutil.rmtree(lake_root / "monitoring")
    other = LakeSync(store, lake, ChunkLimits(max_traces=1, max_spans=1))
    ingest(store, exp, [spans_of_trace()])
    other.sync_once(max_chunks=1)  # re-creates the tables (version 1) with the first trace only
    sync.sync_once()  # a stale snapshot would say the first three are there and land only the fourth
    assert_lake_matches_store(store, lake_root)
    assert read(lake_root, "traces").height == 4
