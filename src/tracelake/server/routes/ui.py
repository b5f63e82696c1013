"""Web UI routes: the pages, ``/static/…`` with caching headers, and (from ``ui_api``) the
JSON the pages read under ``/api/tracelake/``."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracelake.server.routes import ui_api
from tracelake.ui import views

_IMMUTABLE = "public, max-age=31536000, immutable"


async def static_file(request: Request) -> Response:
    """A file of ``tracelake/ui/static``. With the current ``?v=`` it is cached for a year;
    otherwise the browser revalidates it (ETag). Text is sent gzip'd when accepted."""
    asset = views.assets().get(request.path_params["path"])
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    etag = f'"{asset.version}"'
    headers = {"ETag": etag, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff",
               "Cache-Control": _IMMUTABLE if request.query_params.get("v") == asset.version else "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


routes = [
    Route("/", views.experiments_page, methods=["GET"]),
    Route("/experiments/{experiment_id}", views.traces_page, methods=["GET"]),
    Route("/experiments/{experiment_id}/traces/{trace_id}", views.trace_page, methods=["GET"]),
    Route("/experiments/{experiment_id}/sessions", views.sessions_page, methods=["GET"]),
    Route("/experiments/{experiment_id}/sessions/{session_id:path}", views.session_page, methods=["GET"]),
    Route("/experiments/{experiment_id}/monitoring", views.monitoring_page, methods=["GET"]),
    Route("/static/{path:path}", static_file, methods=["GET"]),
    *ui_api.routes,
]
