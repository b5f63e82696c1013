"""Page handlers of the web UI: server-rendered HTML shells with the first data embedded.

Each page renders its frame and first screen of data on the server (one request, no
loading flash); the page's ES module takes over from there (paging, live update, the
span tree). Data reaches scripts only as JSON in ``<script type="application/json">``
(Jinja's ``tojson`` escapes ``<``, ``>``, ``&`` and quotes), and templates autoescape.
Pages carry a Content-Security-Policy that allows scripts from this server only, plus the
one inline import map by nonce.
"""
from __future__ import annotations

import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tracelake.errors import BadFilter, NotFound, TracelakeError
from tracelake.store.sql import overview
from tracelake.store.sql.store import SqlStore
from tracelake.ui import access, icons, present
from tracelake.ui.assets import Assets

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_ORDER = "timestamp_ms DESC"
FIRST_SPAN_PAGE = 2000
ORDERS = {  # the table's sortable columns: URL value -> label
    "timestamp_ms DESC": "Newest first", "timestamp_ms ASC": "Oldest first",
    "execution_time_ms DESC": "Slowest first", "execution_time_ms ASC": "Fastest first",
    "name ASC": "Name A–Z", "status ASC": "Status",
}


@lru_cache(maxsize=1)
def assets() -> Assets:
    return Assets()


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(static=lambda rel: assets().url(rel), sprite=icons.sprite, type_icon=icons.type_icon_id,
                       urlquote=lambda s: quote(str(s), safe=""), modules=lambda: assets().modules(),
                       csrf_token=access.csrf_token, user_menu=access.user_menu)
    env.filters.update(duration=fmt_duration, number=fmt_number, percent=fmt_percent, cost=fmt_cost)
    return env


def fmt_duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)}m {int(ms % 60_000 // 1000)}s"


def fmt_number(n: float | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def fmt_percent(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def fmt_cost(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = environment().get_template(template).render(
        request=request, nonce=nonce, import_map=assets().import_map, **context)
    csp = ("default-src 'self'; script-src 'self' 'nonce-" + nonce + "'; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
    return HTMLResponse(html, status_code=status_code, headers={
        "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Referrer-Policy": "same-origin"})


def _store(request: Request) -> SqlStore:
    store = request.app.state.ctx.store
    assert isinstance(store, SqlStore), "the web UI needs the SQL store"
    return store


def error_page(request: Request, exc: TracelakeError) -> HTMLResponse:
    return render(request, "error.html", status_code=exc.status, title="Not found" if exc.status == 404 else "Error",
                  message=exc.message, status=exc.status)


async def _experiment(request: Request) -> tuple[str, str, int]:
    experiment_id = request.path_params["experiment_id"]
    name, count = await run_in_threadpool(overview.experiment_summary, _store(request), experiment_id)
    return experiment_id, name, count


# -- pages ----------------------------------------------------------------------------

async def experiments_page(request: Request) -> Response:
    store = _store(request)
    visible = await access.visible_experiment_ids(request, store)
    found = await run_in_threadpool(overview.experiment_overviews, store, int(time.time() * 1000), 1000, visible)
    return render(request, "experiments.html", title="Experiments", page="experiments", experiments=found)


async def traces_page(request: Request) -> Response:
    try:
        experiment_id, name, count = await _experiment(request)
    except TracelakeError as exc:
        return error_page(request, exc)
    filter_string = request.query_params.get("filter", "").strip()
    order = request.query_params.get("order", DEFAULT_ORDER)
    if order not in ORDERS:
        order = DEFAULT_ORDER
    data: dict[str, Any] = {"experiment_id": experiment_id, "filter": filter_string, "order": order,
                            "orders": ORDERS, "count": count}
    try:
        data.update(await run_in_threadpool(present.table_page, _store(request), experiment_id, filter_string or None,
                                            [order], None))
    except BadFilter as exc:
        data.update(traces=[], seq=0, error={"message": exc.message, "reason": exc.reason, "position": exc.position})
    return render(request, "traces.html", title=name, page="traces", experiment_id=experiment_id,
                  experiment_name=name, data=data, filter=filter_string, order=order, orders=ORDERS,
                  trace_count=count)


async def trace_page(request: Request) -> Response:
    try:
        experiment_id, name, _count = await _experiment(request)
        info = await run_in_threadpool(_store(request).get_trace_info, request.path_params["trace_id"])
    except TracelakeError as exc:
        return error_page(request, exc)
    if info.experiment_id != experiment_id:
        return RedirectResponse(f"/experiments/{info.experiment_id}/traces/{info.trace_id}", status_code=302)
    summary = present.trace_summary(info)
    # The first page of the span index rides along in the HTML: the tree draws without
    # waiting for a second round trip. Later pages are fetched by the script.
    first = await run_in_threadpool(overview.span_index, _store(request), info.trace_id, FIRST_SPAN_PAGE)
    return render(request, "trace.html", title=info.name or info.trace_id, page="trace",
                  experiment_id=experiment_id, experiment_name=name, trace=summary,
                  spans=present.span_index_json(first))


async def sessions_page(request: Request) -> Response:
    try:
        experiment_id, name, _count = await _experiment(request)
        page = await run_in_threadpool(overview.sessions_page, _store(request), experiment_id)
    except TracelakeError as exc:
        return error_page(request, exc)
    return render(request, "sessions.html", title=f"Sessions · {name}", page="sessions",
                  experiment_id=experiment_id, experiment_name=name, sessions=page.items,
                  next_page_token=page.next_page_token)


async def session_page(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    try:
        experiment_id, name, _count = await _experiment(request)
        turns = await run_in_threadpool(overview.session_turns, _store(request), experiment_id, session_id)
    except TracelakeError as exc:
        return error_page(request, exc)
    if not turns:
        return error_page(request, NotFound(f"No traces in session '{session_id}'"))
    shown = [{"info": present.trace_row(t.info),
              "user": present.user_text(present.json_value(t.inputs)) or t.info.request_preview,
              "assistant": present.assistant_text(present.json_value(t.outputs)) or t.info.response_preview}
             for t in turns]
    tokens = sum(t.info.total_tokens or 0 for t in turns)
    return render(request, "session.html", title=f"Session {session_id}", page="sessions",
                  experiment_id=experiment_id, experiment_name=name, session_id=session_id, turns=shown,
                  tokens=tokens, errors=sum(t.info.state == "ERROR" for t in turns))


async def monitoring_page(request: Request) -> Response:
    try:
        experiment_id, name, _count = await _experiment(request)
    except TracelakeError as exc:
        return error_page(request, exc)
    return render(request, "monitoring.html", title=f"Monitoring · {name}", page="monitoring",
                  experiment_id=experiment_id, experiment_name=name)
