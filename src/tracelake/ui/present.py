"""Entities turned into the small JSON shapes the UI's scripts read (and the pages embed).

Values stay data: nothing here builds HTML. Templates escape (Jinja autoescape) and the
scripts only ever use ``textContent``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tracelake.entities import Assessment, Span, TraceInfo
from tracelake.entities.trace import METADATA_SESSION, METADATA_USER
from tracelake.server.mlflow_json import json_value
from tracelake.store.sql import overview
from tracelake.store.sql.overview import SpanIndexPage
from tracelake.store.sql.store import SqlStore

TABLE_PREVIEW_CHARS = 240
TABLE_PAGE = 50
_HIDDEN_TAG_PREFIX = "mlflow."


def short(text: str | None, limit: int = TABLE_PREVIEW_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "…"


def readable(preview: str | None, pick: Callable[[Any], str | None]) -> str | None:
    """A preview (the start of the JSON text) as a person reads it: the chat message or the
    string inside, when the preview is whole JSON; the text as it is otherwise."""
    if not preview or preview[0] not in "[{\"":
        return preview
    try:
        value = orjson.loads(preview)
    except orjson.JSONDecodeError:
        return preview
    return pick(value) or preview


def assessment_dict(a: Assessment) -> dict[str, Any]:
    return {"id": a.assessment_id, "name": a.name, "kind": a.kind, "value": a.value, "rationale": a.rationale,
            "source": a.source.source_type, "source_id": a.source.source_id, "span_id": a.span_id,
            "time": a.last_update_time, "valid": a.valid, "error": a.error}


def trace_row(info: TraceInfo) -> dict[str, Any]:
    """One row of the traces table."""
    return {
        "id": info.trace_id,
        "time": info.request_time,
        "name": info.name,
        "request": short(readable(info.request_preview, user_text)),
        "response": short(readable(info.response_preview, assistant_text)),
        "state": info.state,
        "duration": info.execution_duration,
        "tokens": info.total_tokens,
        "input_tokens": info.input_tokens,
        "output_tokens": info.output_tokens,
        "cost": info.cost,
        "spans": info.span_count,
        "session": info.trace_metadata.get(METADATA_SESSION),
        "user": info.trace_metadata.get(METADATA_USER),
        "tags": {k: v for k, v in sorted(info.tags.items()) if not k.startswith(_HIDDEN_TAG_PREFIX)},
        "assessments": [assessment_dict(a) for a in info.assessments if a.valid],
    }


def trace_summary(info: TraceInfo) -> dict[str, Any]:
    """What the trace page shows above the spans (all tags, metadata, every assessment)."""
    row = trace_row(info)
    row["experiment_id"] = info.experiment_id
    row["client_request_id"] = info.client_request_id
    row["metadata"] = dict(sorted(info.trace_metadata.items()))
    row["assessments"] = [assessment_dict(a) for a in info.assessments]
    return row


def table_page(store: SqlStore, experiment_id: str, filter_string: str | None, order_by: list[str] | None,
               page_token: str | None, max_results: int = TABLE_PAGE) -> dict[str, Any]:
    """A page of table rows, and the change sequence to poll from (read first, so nothing
    that lands during the search is missed; the client drops rows it already has)."""
    seq = overview.current_seq(store)
    page = store.search_traces([experiment_id], filter_string, order_by, max_results, page_token)
    out: dict[str, Any] = {"traces": [trace_row(t) for t in page.items], "seq": seq}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def span_index_json(page: SpanIndexPage) -> dict[str, Any]:
    """Spans as columns, names and types dictionary-coded, times in µs from ``base_ms``.

    Columns keep 30,000 spans to about a megabyte of JSON; microsecond offsets keep the
    numbers inside a double's exact range (nanoseconds since the epoch are not)."""
    base_ms = page.request_time
    base_ns = base_ms * 1_000_000
    names: dict[str, int] = {}
    types: dict[str, int] = {}
    cols: dict[str, list[Any]] = {k: [] for k in ("id", "parent", "name", "type", "start", "dur", "status",
                                                   "tokens", "cost")}
    ids, parents, name_col, type_col = cols["id"], cols["parent"], cols["name"], cols["type"]
    starts, durs, statuses, token_col, costs = cols["start"], cols["dur"], cols["status"], cols["tokens"], cols["cost"]
    # Plain tuple unpacking: attribute access on 30,000 rows would cost more than the query.
    for span_id, parent, name, span_type, start, end, status, t_in, t_out, t_total, cost in page.rows:
        ids.append(span_id)
        parents.append(parent or "")
        code = names.get(name)
        if code is None:
            code = names[name] = len(names)
        name_col.append(code)
        code = types.get(span_type)
        if code is None:
            code = types[span_type] = len(types)
        type_col.append(code)
        starts.append((start - base_ns) // 1000)
        durs.append(None if end is None else (end - start) // 1000)
        statuses.append(status)
        if t_total is None and (t_in is not None or t_out is not None):
            t_total = (t_in or 0) + (t_out or 0)
        token_col.append(t_total)
        costs.append(cost)
    out: dict[str, Any] = {"base_ms": base_ms, "names": list(names), "types": list(types), **cols}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def span_detail_json(span: Span) -> dict[str, Any]:
    return {
        "id": span.span_id,
        "parent": span.parent_span_id,
        "name": span.name,
        "type": span.span_type,
        "kind": span.kind,
        "dur": None if span.end_time_ns is None else (span.end_time_ns - span.start_time_ns) // 1000,
        "status": span.status_code,
        "status_message": span.status_message,
        "model": span.model,
        "inputs": json_value(span.inputs),
        "outputs": json_value(span.outputs),
        "attributes": span.attributes,
        "events": [{"name": e.name, "offset": (e.time_ns - span.start_time_ns) // 1000, "attributes": e.attributes}
                   for e in span.events],
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "total_tokens": span.total_tokens,
        "cost": span.cost,
    }


# -- conversations ----------------------------------------------------------------------

def _content_text(content: Any) -> str | None:
    """Text of a chat message's content: a string, or OpenAI/Anthropic content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, dict) else p for p in content]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return None


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict):
        for key in ("messages", "input", "inputs"):
            found = value.get(key)
            if isinstance(found, list) and found and all(isinstance(m, dict) and "role" in m for m in found):
                return found
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return value
    return None


def user_text(inputs: Any) -> str | None:
    """What the user said in one turn: the last user message, a lone string field, or the text."""
    messages = _messages(inputs)
    if messages:
        for message in reversed(messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return _content_text(messages[-1].get("content"))
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, dict):
        strings = [v for v in inputs.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return None if inputs is None else orjson.dumps(inputs).decode()


def assistant_text(outputs: Any) -> str | None:
    """What the app answered: a chat completion's message, a message, or the text."""
    if isinstance(outputs, dict):
        choices = outputs.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            return _content_text(message.get("content")) if isinstance(message, dict) else None
        if "content" in outputs and "role" in outputs:
            return _content_text(outputs.get("content"))
        messages = _messages(outputs)
        if messages:
            return _content_text(messages[-1].get("content"))
        strings = [v for v in outputs.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    if isinstance(outputs, str):
        return outputs
    messages = _messages(outputs)
    if messages:
        return _content_text(messages[-1].get("content"))
    return None if outputs is None else orjson.dumps(outputs).decode()
