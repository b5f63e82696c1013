"""Lake routes under ``/api/tracelake/lake`` (tables and SQL; see ``tracelake.lake``).

=====================  ===================================================================
``GET  /tables``       the lake tables with freshness, row counts and columns (only those
                       the caller may SELECT from, when auth is on)
``POST /sql``          ``{"sql": "SELECT ...", "max_rows": 1000}`` → columns, rows,
                       ``truncated``; read-only, every table referenced must be granted
=====================  ===================================================================

Both need only a signed-in caller at the route level: the table grants are checked here,
per table, because which tables a query reads is known only after parsing it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.auth.context import auth_service, current_principal
from tracelake.errors import InvalidRequest, Unauthenticated
from tracelake.server.requests import params
from tracelake.server.routes._util import ctx
from tracelake.store.sql.store import SqlStore

if TYPE_CHECKING:
    from tracelake.lake.catalog import Catalog, GrantCheck

# The lake stack (pyarrow, deltalake, DuckDB, sqlglot) is imported by the first lake request,
# not with the server: a server whose lake sync runs in a child process may never need it.

PREFIX = "/api/tracelake/lake"
MAX_ROWS_LIMIT = 100_000


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS),
                    media_type="application/json")


def _catalog(request: Request) -> Catalog:
    from tracelake.lake.catalog import Catalog
    from tracelake.lake.worker import lake_from_settings

    worker = getattr(request.app.state, "lake", None)
    return Catalog(worker.lake if worker is not None else lake_from_settings(ctx(request).settings))


def _grants(request: Request) -> tuple[Any, GrantCheck | None]:
    """(principal, grant check) — both None when the server runs without auth."""
    service = auth_service(request)
    if service is None:
        return None, None
    principal = current_principal(request)
    if principal is None:
        raise Unauthenticated("authentication required")
    from tracelake.lake.catalog import auth_grant_check

    return principal, auth_grant_check(service.grants)


async def tables(request: Request) -> Response:
    from tracelake.lake.source import ChangeReader
    from tracelake.lake.sync import APP_ID

    catalog = _catalog(request)
    principal, check = _grants(request)
    store = ctx(request).store

    def build() -> list[dict[str, Any]]:
        seq = ChangeReader(store).current_seq() if isinstance(store, SqlStore) else None
        names = None
        if check is not None:
            names = check(principal, [catalog.full_name(s) for s in catalog.specs()])
        return [i.to_json() for i in catalog.infos(seq, APP_ID, names)]
    return _json({"catalog": catalog.lake.catalog, "tables": await run_in_threadpool(build)})


async def sql(request: Request) -> Response:
    from tracelake.lake.sql import DEFAULT_MAX_ROWS, run_query

    data = await params(request)
    text = data.get("sql")
    if not isinstance(text, str):
        raise InvalidRequest("missing required parameter 'sql' (a SELECT query over the lake tables)")
    max_rows = data.get("max_rows", DEFAULT_MAX_ROWS)
    if isinstance(max_rows, str) and max_rows.isdigit():
        max_rows = int(max_rows)
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or not 1 <= max_rows <= MAX_ROWS_LIMIT:
        raise InvalidRequest(f"max_rows must be an integer from 1 to {MAX_ROWS_LIMIT}")
    catalog = _catalog(request)
    principal, check = _grants(request)
    timeout = ctx(request).settings.lake_sql_timeout_s
    result = await run_in_threadpool(run_query, catalog, text, principal, check, max_rows, timeout)
    return _json({"columns": [{"name": n, "type": t} for n, t in zip(result.columns, result.types)],
                  "rows": result.rows, "truncated": result.truncated, "tables": result.tables})


routes = [
    Route(f"{PREFIX}/tables", tables, methods=["GET"]),
    Route(f"{PREFIX}/sql", sql, methods=["POST"]),
]
