"""Lake fixtures: a SQL store on SQLite and PostgreSQL (``store_uri``), a lake folder, a sync."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelake.lake.storage import Lake
from tracelake.lake.sync import LakeSync
from tracelake.store.sql.store import SqlStore


@pytest.fixture
def store(store_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"), offload_span_bytes=2048)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def exp(store: SqlStore) -> str:
    return store.create_experiment("lake-tests")


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(lake_root: Path) -> Lake:
    return Lake.at(str(lake_root))


@pytest.fixture
def sync(store: SqlStore, lake: Lake) -> LakeSync:
    return LakeSync(store, lake)
