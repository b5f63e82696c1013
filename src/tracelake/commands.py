"""The click command group behind ``tracelake`` (imported only with the server extra)."""
from __future__ import annotations

import ipaddress
import logging
from typing import Any

import click

from tracelake.settings import Settings


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_safety(settings: Settings) -> None:
    """No auth is fine only on loopback; elsewhere auth or an explicit opt-out is required."""
    if _is_loopback(settings.host) or settings.auth or settings.insecure_no_auth:
        return
    raise click.UsageError(
        f"refusing to listen on {settings.host} without authentication: anyone who can reach it could read "
        "every trace. Bind 127.0.0.1, or pass --insecure-no-auth if the network is trusted.")


@click.group()
@click.version_option(package_name="tracelake")
def cli() -> None:
    """tracelake: open, self-hosted tracing for GenAI apps."""


@cli.command()
@click.option("--host", default=None, help="Address to bind [env TRACELAKE_HOST; default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [env TRACELAKE_PORT; default 5000].")
@click.option("--store", default=None, help="sqlite:///PATH or postgresql://... [env TRACELAKE_STORE].")
@click.option("--artifacts", default=None, help="Artifact root: folder or s3://bucket/prefix [env TRACELAKE_ARTIFACTS].")
@click.option("--lake", default=None, help="Delta Lake root [env TRACELAKE_LAKE].")
@click.option("--insecure-no-auth", is_flag=True, default=None,
              help="Allow a non-loopback address without auth [env TRACELAKE_INSECURE_NO_AUTH].")
@click.option("--log-level", default=None, help="debug, info, warning, error [env TRACELAKE_LOG_LEVEL].")
def server(**options: Any) -> None:
    """Run the trace server (ingest, query API)."""
    import uvicorn

    from tracelake.server import create_app

    settings = Settings.load(options)
    check_bind_safety(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    click.echo(f"tracelake server on http://{settings.host}:{settings.port} (store {_safe_uri(settings.store)})")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False,
                timeout_graceful_shutdown=10)


def _safe_uri(uri: str) -> str:
    """The store URI without its password (never print secrets)."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return uri


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option("--store", default=None, help="Store URI [env TRACELAKE_STORE].")
def db_upgrade(store: str | None) -> None:
    """Apply schema migrations (the server also does this at start)."""
    from tracelake.store.migrations import upgrade

    settings = Settings.load({"store": store})
    upgrade(settings.store, artifact_root=settings.artifacts)
    click.echo(f"database {_safe_uri(settings.store)} is up to date")
