"""``create_app(settings)``: the one ASGI app of the server."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tracelake.auth.service import start_auth
from tracelake.errors import InvalidRequest, NotFound, TracelakeError
from tracelake.server.context import AppContext
from tracelake.server.limits import IngestLimiter
from tracelake.server.responses import JSONResponse, error_response
from tracelake.server.routes import all_routes
from tracelake.settings import Settings
from tracelake.store.base import Store

if TYPE_CHECKING:
    from tracelake.lake.worker import LakeWorker

log = logging.getLogger("tracelake.server")


def open_store(settings: Settings) -> Store:
    """Run migrations, then open the SQL store described by ``settings``."""
    from tracelake.store.migrations import upgrade
    from tracelake.store.sql.store import SqlStore

    upgrade(settings.store, artifact_root=settings.artifacts)
    return SqlStore.from_settings(settings)


def create_app(settings: Settings | None = None, store: Store | None = None, lake_process: bool = False,
               writer_process: bool = False) -> Starlette:
    """Build the app. ``store`` may be passed in (tests); otherwise it is opened from settings.

    ``lake_process`` / ``writer_process``: run the lake sync / the ingest writer in a child
    process rather than a thread (``tracelake server`` does, per ``settings.lake_sync_process``
    and ``settings.writer_process``; embedded apps and tests keep threads). The writer child
    opens the store from the settings, so it is used only for a store opened here."""
    from tracelake.server.workers import RetentionWorker
    from tracelake.store.sql.store import SqlStore
    from tracelake.store.sql.writer import GroupCommitWriter

    settings = settings or Settings()
    owns_store = store is None
    store = store or open_store(settings)
    writer: Any
    if writer_process and owns_store and isinstance(store, SqlStore):
        from tracelake.store.sql.writer_process import ProcessWriter

        writer = ProcessWriter(settings, max_queue=settings.write_queue_size)
    else:
        writer = GroupCommitWriter(store, max_queue=settings.write_queue_size)
    ctx = AppContext(
        settings=settings,
        store=store,
        writer=writer,
        limiter=IngestLimiter(settings.ingest_rate, settings.ingest_burst, settings.experiment_ingest_rate),
    )
    retention = RetentionWorker(ctx)
    lake = _lake_worker(store, settings)
    auth = start_auth(settings, store) if settings.auth else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        start_writer = getattr(writer, "start", None)  # a ProcessWriter spawns its child here
        if start_writer is not None:
            start_writer()
        retention.start()
        if lake is not None:
            lake.start(process=lake_process)
        try:
            yield
        finally:
            if lake is not None:
                lake.stop()
            retention.stop()
            writer.close()
            if owns_store:
                store.close()

    app = Starlette(routes=all_routes(), lifespan=lifespan, middleware=auth.middleware() if auth else [],
                    exception_handlers={
                        TracelakeError: _tracelake_error,
                        HTTPException: _http_error,
                        Exception: _unexpected_error,
                    })
    app.state.ctx = ctx
    app.state.auth = auth
    app.state.lake = lake
    return app


def _lake_worker(store: Store, settings: Settings) -> LakeWorker | None:
    """The lake sync + maintenance worker (lake/worker.py); the sync reads the SQL store's change log."""
    from tracelake.lake.worker import LakeWorker
    from tracelake.store.sql.store import SqlStore

    return LakeWorker(store, settings) if isinstance(store, SqlStore) else None


async def _tracelake_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TracelakeError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no such endpoint: {request.method} {request.url.path}"))
    if exc.status_code == 405:
        err = InvalidRequest(f"method {request.method} is not allowed on {request.url.path}")
        return JSONResponse({"error_code": "ENDPOINT_NOT_FOUND", "message": err.message}, status_code=405)
    return JSONResponse({"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc.detail)},
                        status_code=exc.status_code)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error_code": "INTERNAL_ERROR", "message": f"internal error: {type(exc).__name__}"},
                        status_code=500)
