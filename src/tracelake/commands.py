"""The click command group behind ``tracelake`` (imported only with the server extra)."""
from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

import click

from tracelake.auth.cli import COMMANDS as AUTH_COMMANDS
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
@click.option("--auth", is_flag=True, default=None,
              help="Require sign-in: tokens, basic auth, UI sessions [env TRACELAKE_AUTH].")
@click.option("--admin-password", default=None,
              help="First start with --auth: password of user 'admin' [env TRACELAKE_ADMIN_PASSWORD; "
                   "default: a one-time password printed once].")
@click.option("--insecure-no-auth", is_flag=True, default=None,
              help="Allow a non-loopback address without auth [env TRACELAKE_INSECURE_NO_AUTH].")
@click.option("--log-level", default=None, help="debug, info, warning, error [env TRACELAKE_LOG_LEVEL].")
def server(**options: Any) -> None:
    """Run the trace server (ingest, query API)."""
    import uvicorn

    from tracelake.server import create_app
    from tracelake.server.memory import limit_malloc_arenas, shorten_switch_interval, tune_gc

    settings = Settings.load(options)
    check_bind_safety(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shorten_switch_interval()
    limit_malloc_arenas()  # before the app starts its threads
    app = create_app(settings, lake_process=settings.lake_sync_process, writer_process=settings.writer_process)
    tune_gc()  # after: what the app built at start is frozen out of collections
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


for _command in AUTH_COMMANDS:  # tracelake users | tokens | permissions
    cli.add_command(_command)


# -- lake ------------------------------------------------------------------------------------------

@cli.group()
def lake() -> None:
    """Delta Lake tables: sync from the store, maintain, list."""


def _lake_settings(store: str | None, lake_root: str | None, catalog: str | None = None) -> Settings:
    return Settings.load({"store": store, "lake": lake_root, "lake_catalog": catalog})


@lake.command("sync")
@click.option("--store", default=None, help="Store URI [env TRACELAKE_STORE].")
@click.option("--lake", "lake_root", default=None, help="Lake root: folder or s3://bucket/prefix [env TRACELAKE_LAKE].")
@click.option("--once", is_flag=True, help="Sync what is pending, then exit.")
@click.option("--interval", type=float, default=None,
              help="Seconds between syncs [env TRACELAKE_LAKE_SYNC_INTERVAL_S; default 2].")
@click.option("--max-traces-per-chunk", type=int, default=5_000, show_default=True,
              help="Trace changes per Delta commit (bounds the work of one step).")
@click.option("--max-spans-per-chunk", type=int, default=50_000, show_default=True, help="New spans per Delta commit.")
@click.option("--debug-pause-at", default=None, hidden=True,
              help="Testing: stop (sleep) at this sync step, e.g. 'committed:traces', after printing it.")
def lake_sync(store: str | None, lake_root: str | None, once: bool, interval: float | None,
              max_traces_per_chunk: int, max_spans_per_chunk: int, debug_pause_at: str | None) -> None:
    """Land the store's changes in the lake tables, exactly once."""
    import threading
    import time

    from tracelake.lake.source import ChunkLimits
    from tracelake.lake.sync import LakeSync
    from tracelake.lake.worker import lake_from_settings
    from tracelake.store.sql.store import SqlStore

    settings = _lake_settings(store, lake_root).replace(
        **({"lake_sync_interval_s": interval} if interval is not None else {}))
    hook = None
    if debug_pause_at:
        def hook(event: str) -> None:
            if event == debug_pause_at:
                click.echo(f"paused at {event}")
                sys.stdout.flush()
                while True:
                    time.sleep(3600)
    sql_store = SqlStore(settings.store, artifact_root=settings.artifacts)
    try:
        sync = LakeSync(sql_store, lake_from_settings(settings), ChunkLimits(max_traces_per_chunk, max_spans_per_chunk),
                        hook=hook)
        if once:
            result = sync.sync_once()
            click.echo(f"synced {result.chunks} chunk(s): {result.traces} trace rows, {result.spans} spans, "
                       f"{result.assessments} assessments, {result.deleted} deletions; watermark {result.watermark}")
            return
        click.echo(f"syncing {_safe_uri(settings.store)} into {settings.lake} every {settings.lake_sync_interval_s:g} s")
        stop = threading.Event()
        try:
            sync.run_forever(settings.lake_sync_interval_s, stop.wait)
        except KeyboardInterrupt:
            pass
    finally:
        sql_store.close()


@lake.command("maintain")
@click.option("--lake", "lake_root", default=None, help="Lake root [env TRACELAKE_LAKE].")
@click.option("--vacuum-retention-hours", type=float, default=None,
              help="Keep unreferenced files younger than this [env TRACELAKE_LAKE_VACUUM_RETENTION_HOURS; default 168].")
def lake_maintain(lake_root: str | None, vacuum_retention_hours: float | None) -> None:
    """Compact small files, write checkpoints and vacuum every lake table."""
    from tracelake.lake.catalog import Catalog
    from tracelake.lake.maintenance import maintain
    from tracelake.lake.worker import lake_from_settings

    settings = Settings.load({"lake": lake_root, "lake_vacuum_retention_hours": vacuum_retention_hours})
    catalog = Catalog(lake_from_settings(settings))
    for spec in catalog.specs():
        result = maintain(catalog.lake, spec, settings.lake_vacuum_retention_hours)
        if result is not None:
            click.echo(f"{catalog.full_name(spec)}: {result.files_before} files, compacted {result.files_removed} "
                       f"into {result.files_added}, checkpoint at version {result.checkpoint_version}, "
                       f"vacuumed {result.vacuumed} files")


@lake.command("tables")
@click.option("--lake", "lake_root", default=None, help="Lake root [env TRACELAKE_LAKE].")
def lake_tables(lake_root: str | None) -> None:
    """List the lake tables with row counts and last commit."""
    from tracelake.lake.catalog import Catalog
    from tracelake.lake.sync import APP_ID
    from tracelake.lake.worker import lake_from_settings

    catalog = Catalog(lake_from_settings(Settings.load({"lake": lake_root})))
    for info in catalog.infos(sync_app_id=APP_ID):
        if info.exists:
            click.echo(f"{info.name}\t{info.rows} rows\t{info.files} files\tversion {info.delta_version}\t"
                       f"synced through seq {info.synced_through_seq}")
        else:
            click.echo(f"{info.name}\t(not created yet)")


@cli.command("sql")
@click.argument("query")
@click.option("--lake", "lake_root", default=None, help="Lake root [env TRACELAKE_LAKE].")
@click.option("--store", default=None, help="Store URI, for --user [env TRACELAKE_STORE].")
@click.option("--user", default=None,
              help="Check the query against this user's SELECT grants (default: no check, as the lake's owner).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--max-rows", type=int, default=10_000, show_default=True)
def sql_command(query: str, lake_root: str | None, store: str | None, user: str | None, fmt: str,
                max_rows: int) -> None:
    """Run a read-only SQL query over the lake tables (DuckDB), e.g. "SELECT count(*) FROM traces"."""
    from tracelake.errors import TracelakeError
    from tracelake.lake.catalog import Catalog
    from tracelake.lake.sql import run_query
    from tracelake.lake.worker import lake_from_settings

    settings = Settings.load({"lake": lake_root, "store": store})
    catalog = Catalog(lake_from_settings(settings))
    try:
        principal, check = _cli_principal(settings, user)
        result = run_query(catalog, query, principal, check, max_rows, settings.lake_sql_timeout_s)
    except TracelakeError as exc:
        raise click.ClickException(exc.message) from None
    _print_result(result, fmt)


def _cli_principal(settings: Settings, user: str | None) -> tuple[Any, Any]:
    if user is None:
        return None, None
    from tracelake.auth.grants import GrantStore
    from tracelake.auth.model import Principal
    from tracelake.auth.store import AuthStore
    from tracelake.lake.catalog import auth_grant_check
    from tracelake.store.sql.engine import make_engine

    engine = make_engine(settings.store)
    users = AuthStore(engine)
    found = users.require_user(user)
    principal = Principal(found.user_id, found.username, found.is_admin, users.group_ids(found.user_id), via="cli")
    return principal, auth_grant_check(GrantStore(users))


def _print_result(result: Any, fmt: str) -> None:
    import csv
    import io

    import orjson

    if fmt == "json":
        click.echo(orjson.dumps([dict(zip(result.columns, row)) for row in result.rows], default=str,
                                option=orjson.OPT_NON_STR_KEYS).decode())
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) for v in row] for row in result.rows])
        click.echo(out.getvalue(), nl=False)
    else:
        cells = [result.columns] + [[_cell(v) for v in row] for row in result.rows]
        widths = [min(60, max(len(r[i]) for r in cells)) for i in range(len(result.columns))]
        for n, row in enumerate(cells):
            click.echo("  ".join(c[:60].ljust(w) for c, w in zip(row, widths)).rstrip())
            if n == 0:
                click.echo("  ".join("-" * w for w in widths))
    if result.truncated:
        click.echo(f"(truncated to {len(result.rows)} rows)", err=True)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        import orjson

        return orjson.dumps(value, default=str).decode()
    return str(value)
