"""The lake on S3 (moto in server mode on 127.0.0.1): sync, then read with deltalake, Polars
and DuckDB, and query through the SQL engine."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import boto3
import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable
from moto.server import ThreadedMotoServer

from tests.lake.helpers import arrow_dataset, assert_lake_matches_store, ingest, spans_of_trace
from tracelake.entities import Assessment
from tracelake.lake.catalog import Catalog
from tracelake.lake.maintenance import maintain
from tracelake.lake.sql import run_query
from tracelake.lake.storage import Lake
from tracelake.lake.sync import APP_ID, LakeSync
from tracelake.lake.tables import TRACES

ROOT = "s3://tracelake-lake/prod"


@pytest.fixture(scope="module")
def s3_options() -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket="tracelake-lake")
    try:
        yield {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    finally:
        server.stop()


def test_sync_to_s3_then_read_with_every_engine(store, exp, s3_options, request) -> None:
    root = f"{ROOT}/{request.node.callspec.id}"
    lake = Lake.at(root, storage_options=s3_options)
    ids = ingest(store, exp, [spans_of_trace() for _ in range(6)])
    LakeSync(store, lake).sync_once()
    store.set_trace_tag(ids[0], "s3", "yes")
    store.create_assessment(Assessment(assessment_id="", trace_id=ids[1], name="q", kind="feedback", value=1))
    store.delete_traces(exp, trace_ids=[ids[2]])
    LakeSync(store, lake).sync_once()
    assert_lake_matches_store(store, root, s3_options)
    traces = DeltaTable(f"{root}/monitoring/traces", storage_options=s3_options)
    assert traces.transaction_version(APP_ID) is not None
    con = duckdb.connect()
    con.register("traces", arrow_dataset(f"{root}/monitoring/traces", s3_options))
    assert con.execute("SELECT tags['s3'] FROM traces WHERE trace_id = ?", [ids[0]]).fetchall() == [("yes",)]
    polars = pl.read_delta(f"{root}/monitoring/spans", storage_options=s3_options)
    assert set(polars["trace_id"].to_list()) == set(ids) - {ids[2]}
    result = run_query(Catalog(lake), "SELECT count(*) AS n FROM tracelake.monitoring.traces")
    assert result.rows == [[5]]
    assert maintain(lake, TRACES, vacuum_retention_hours=0) is not None
    assert DeltaTable(f"{root}/monitoring/traces", storage_options=s3_options).transaction_version(APP_ID) == \
        traces.transaction_version(APP_ID)
