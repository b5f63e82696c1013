"""Server fixtures: the ASGI app in process (Starlette's TestClient runs its lifespan)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tracelake.server import create_app
from tracelake.settings import Settings


@pytest.fixture
def settings(store_uri: str, tmp_path) -> Settings:
    return Settings(store=store_uri, artifacts=str(tmp_path / "artifacts"), lake=str(tmp_path / "lake"))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
