"""Shared fixtures: a throwaway PostgreSQL server for the session, and ``store_uri``
which runs every store test on SQLite and on PostgreSQL."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """Start a real PostgreSQL cluster (Debian's package) on loopback for this session."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not bins:
        pytest.fail("PostgreSQL is not installed: run the suite with scripts/test.sh")
    pgbin = bins[-1]
    tmp = tempfile.mkdtemp(prefix="tracelake-pg.", dir="/tmp")
    pre: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        pre = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*pre, *args], check=True, capture_output=True, text=True)

    run(f"{pgbin}/initdb", "-D", f"{tmp}/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8")
    run(f"{pgbin}/pg_ctl", "-D", f"{tmp}/data", "-l", f"{tmp}/server.log", "-w", "-t", "30", "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(f"{pgbin}/pg_ctl", "-D", f"{tmp}/data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def _create_pg_database(admin_dsn: str) -> str:
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(admin_dsn: str, dsn: str) -> None:
    import psycopg

    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database URI: every test using it runs on both databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tracelake.db"
        return
    admin = request.getfixturevalue("pg_admin_dsn")
    dsn = _create_pg_database(admin)
    try:
        yield dsn
    finally:
        _drop_pg_database(admin, dsn)
