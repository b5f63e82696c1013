"""Fixtures of the SQL store tests: every store runs on SQLite and PostgreSQL (``store_uri``)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelake.store.sql.store import SqlStore


@pytest.fixture
def artifact_root(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def store(store_uri: str, artifact_root: Path) -> Iterator[SqlStore]:
    s = SqlStore(store_uri, artifact_root=str(artifact_root), offload_span_bytes=4096)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def exp(store: SqlStore) -> str:
    """A fresh experiment id."""
    return store.create_experiment("tests")
