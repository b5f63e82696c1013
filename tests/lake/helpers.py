"""Builders for the lake tests, and readers of the Delta tables that use ``deltalake`` and
Polars/DuckDB directly (never tracelake's own reader)."""
from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from deltalake import DeltaTable

from tracelake.entities import Span
from tracelake.store.base import SpanBatch, TraceUpdate
from tracelake.store.sql.store import SqlStore

T0_NS = 1_700_000_000_000_000_000
MS = 1_000_000
_ids = itertools.count(1)


def spans_of_trace(children: int = 3, start_ms: int = 0, root_inputs: str = '{"question": "hi"}',
                   root_outputs: str = '"hello"', trace_hex: str | None = None) -> list[Span]:
    """A root span and ``children`` children (one an LLM with token usage), root first."""
    tid = trace_hex or uuid.uuid4().hex
    start = T0_NS + start_ms * MS
    root = Span(trace_id=tid, span_id=f"{next(_ids):016x}", parent_span_id=None, name="agent",
                start_time_ns=start, end_time_ns=start + 100 * MS, status_code="OK", span_type="AGENT",
                inputs=root_inputs, outputs=root_outputs, attributes={"service": "tests", "n": 1})
    kids = [Span(trace_id=tid, span_id=f"{next(_ids):016x}", parent_span_id=root.span_id, name=f"llm-{i}",
                 start_time_ns=start + (1 + i) * MS, end_time_ns=start + (5 + i) * MS, status_code="OK",
                 span_type="LLM", inputs='{"p": 1}', outputs='"x"', model="gpt-test", input_tokens=10,
                 output_tokens=5, total_tokens=15)
            for i in range(children)]
    return [root, *kids]


def ingest(store: SqlStore, experiment_id: str, traces: list[list[Span]], **trace_fields: Any) -> list[str]:
    """Write the traces in one group commit; returns their ids (``tr-…``)."""
    batches = []
    for spans in traces:
        updates = [TraceUpdate(trace_id="tr-" + spans[0].trace_id, experiment_id=experiment_id, **trace_fields)] \
            if trace_fields else []
        batches.append(SpanBatch(experiment_id=experiment_id, spans=spans, traces=updates))
    store.write_spans(batches)
    return ["tr-" + spans[0].trace_id for spans in traces]


def table_path(lake_root: Path | str, name: str) -> str:
    schema = "gateway" if name.startswith("inference_") or name == "endpoint_usage" else "monitoring"
    return f"{lake_root}/{schema}/{name}"


def read(lake_root: Path | str, name: str, storage_options: dict[str, str] | None = None) -> pl.DataFrame:
    """The table as Polars reads it."""
    return pl.read_delta(table_path(lake_root, name), storage_options=storage_options)


def arrow_dataset(path: str, storage_options: dict[str, str] | None = None) -> Any:
    """The table's pyarrow dataset, strings declared as ``string_view``: files rewritten by a
    MERGE hold ``string_view`` and pyarrow cannot filter them under a ``string`` schema."""
    import pyarrow as pa

    table = DeltaTable(path, storage_options=storage_options)

    def view(t: pa.DataType) -> pa.DataType:
        if pa.types.is_string(t):
            return pa.string_view()
        if pa.types.is_map(t):
            return pa.map_(view(t.key_type), view(t.item_type))
        if pa.types.is_list(t):
            return pa.list_(pa.field(t.value_field.name, view(t.value_type)))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, view(f.type), f.nullable) for f in t])
        return t
    schema = pa.schema([pa.field(f.name, view(f.type), f.nullable) for f in table.to_pyarrow_dataset().schema])
    return table.to_pyarrow_dataset(schema=schema)


def duck(lake_root: Path | str, sql: str, **tables: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on DuckDB over the named tables' Arrow datasets (deltalake)."""
    con = duckdb.connect()
    for alias, name in tables.items():
        con.register(alias, arrow_dataset(table_path(lake_root, name)))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def watermark(lake_root: Path | str, name: str, storage_options: dict[str, str] | None = None) -> int | None:
    return DeltaTable(table_path(lake_root, name), storage_options=storage_options).transaction_version(
        "tracelake.sync")


def store_trace_ids(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql("SELECT trace_id FROM traces")}


def store_span_keys(store: SqlStore) -> set[tuple[str, str]]:
    with store.engine.connect() as conn:
        return {(r[0], r[1]) for r in conn.exec_driver_sql("SELECT trace_id, span_id FROM spans")}


def assert_lake_matches_store(store: SqlStore, lake_root: Path | str,
                              storage_options: dict[str, str] | None = None) -> None:
    """Every trace, span and assessment of the store is in the lake exactly once, and nothing else."""
    traces = read(lake_root, "traces", storage_options)
    assert traces["trace_id"].n_unique() == traces.height, "a trace landed twice"
    assert set(traces["trace_id"].to_list()) == store_trace_ids(store)
    spans = read(lake_root, "spans", storage_options)
    keys = list(zip(spans["trace_id"].to_list(), spans["span_id"].to_list()))
    assert len(keys) == len(set(keys)), "a span landed twice"
    assert set(keys) == store_span_keys(store)
    assessments = read(lake_root, "assessments", storage_options)
    assert assessments["assessment_id"].n_unique() == assessments.height
    with store.engine.connect() as conn:
        stored = {r[0] for r in conn.exec_driver_sql("SELECT assessment_id FROM assessments")}
    assert set(assessments["assessment_id"].to_list()) == stored
