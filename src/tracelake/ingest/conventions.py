"""Normalise GenAI attribute conventions into ``Span`` fields.

Three conventions are read — MLflow (``mlflow.*``), OpenTelemetry GenAI semantic conventions
(``gen_ai.*``) and OpenInference (``openinference.*``, ``llm.*``, ``input.value`` ...). When
several describe the same field, MLflow wins, then OpenInference, then GenAI. The full
mapping is in ``docs/conventions.md``.

Attributes that were moved into ``inputs``/``outputs`` are removed from ``attributes``; all
others are kept as sent. ``normalise_span`` also returns the trace-level facts a span
carries (tags, metadata, client request id) so the pipeline can emit ``TraceUpdate``s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tracelake.entities import Span, SpanType
from tracelake.entities.trace import METADATA_SESSION, METADATA_USER
from tracelake.errors import Unprocessable

METADATA_TOKEN_USAGE = "mlflow.trace.tokenUsage"
ATTR_TRACE_TAGS = "tracelake.trace.tags"
ATTR_TRACE_METADATA = "tracelake.trace.metadata"
ATTR_CLIENT_REQUEST_ID = "tracelake.trace.client_request_id"

GENAI_OPERATION_TYPES = {
    "chat": SpanType.CHAT_MODEL,
    "text_completion": SpanType.LLM,
    "generate_content": SpanType.LLM,
    "embeddings": SpanType.EMBEDDING,
    "execute_tool": SpanType.TOOL,
    "invoke_agent": SpanType.AGENT,
    "create_agent": SpanType.AGENT,
}
OPENINFERENCE_KIND_TYPES = {
    kind: kind for kind in ("LLM", "CHAIN", "RETRIEVER", "TOOL", "AGENT", "EMBEDDING", "RERANKER",
                            "GUARDRAIL", "EVALUATOR", "UNKNOWN")
}

# Keys that become inputs/outputs, in precedence order (the flattened message lists follow).
INPUT_KEYS = ("mlflow.spanInputs", "input.value", "gen_ai.input.messages", "gen_ai.tool.call.arguments")
OUTPUT_KEYS = ("mlflow.spanOutputs", "output.value", "gen_ai.output.messages", "gen_ai.tool.call.result")
# Flattened message lists: (prefix, marker keys for index 0, wrapper names). The markers let
# a span without such a list skip the scan over all its keys. OpenInference wraps each list
# item in one named object ({"message": {...}}), which is unwrapped.
_OI_WRAPPERS = frozenset({"message", "tool_call", "message_content", "document", "embedding"})
_NO_WRAPPERS: frozenset[str] = frozenset()
_OI_IN = ("llm.input_messages.", ("llm.input_messages.0.message.role", "llm.input_messages.0.message.content"),
          _OI_WRAPPERS)
_OI_OUT = ("llm.output_messages.", ("llm.output_messages.0.message.role",
                                    "llm.output_messages.0.message.content"), _OI_WRAPPERS)
_GENAI_IN = ("gen_ai.prompt.", ("gen_ai.prompt.0.role", "gen_ai.prompt.0.content"), _NO_WRAPPERS)
_GENAI_OUT = ("gen_ai.completion.", ("gen_ai.completion.0.role", "gen_ai.completion.0.content"), _NO_WRAPPERS)
_Indexed = tuple[str, tuple[str, str], frozenset[str]]

_MODEL_KEYS = ("llm.response.model_name", "llm.model_name", "llm.request.model_name",
               "gen_ai.response.model", "gen_ai.request.model")


_TYPE_KEYS = ("mlflow.spanType", "openinference.span.kind", "gen_ai.operation.name")
_INPUT_HITS = frozenset(INPUT_KEYS + _OI_IN[1] + _GENAI_IN[1])
_OUTPUT_HITS = frozenset(OUTPUT_KEYS + _OI_OUT[1] + _GENAI_OUT[1])
_MODEL_HITS = frozenset(("mlflow.llm.model",) + _MODEL_KEYS)
_USAGE_HITS = frozenset((
    "mlflow.chat.tokenUsage", "mlflow.llm.cost", "llm.cost.total",
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens", "gen_ai.usage.total_tokens",
    "llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total",
))
_FACT_HITS = frozenset((ATTR_TRACE_TAGS, ATTR_TRACE_METADATA, ATTR_CLIENT_REQUEST_ID, METADATA_TOKEN_USAGE,
                        "session.id", "user.id", "gen_ai.conversation.id"))
_KNOWN_KEYS = frozenset(_TYPE_KEYS) | _INPUT_HITS | _OUTPUT_HITS | _MODEL_HITS | _USAGE_HITS | _FACT_HITS


@dataclass(slots=True)
class TraceFacts:
    """Trace-level data found on one span."""

    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    client_request_id: str | None = None
    from_root: bool = False


def normalise_span(span: Span) -> TraceFacts | None:
    """Fill ``span``'s typed fields from its attributes (in place); return its trace facts."""
    attrs = span.attributes
    # One C-level pass finds which known keys are present; most checks below then skip.
    hits = _KNOWN_KEYS.intersection(attrs)
    if not hits:
        return None
    if "mlflow.spanType" in hits:
        span.span_type = json_string(attrs["mlflow.spanType"]) or SpanType.UNKNOWN
    elif "openinference.span.kind" in hits:
        kind = attrs["openinference.span.kind"]
        span.span_type = OPENINFERENCE_KIND_TYPES.get(kind.upper(), SpanType.UNKNOWN) \
            if isinstance(kind, str) else SpanType.UNKNOWN
    elif "gen_ai.operation.name" in hits:
        operation = attrs["gen_ai.operation.name"]
        span.span_type = GENAI_OPERATION_TYPES.get(operation.lower(), SpanType.UNKNOWN) \
            if isinstance(operation, str) else SpanType.UNKNOWN
    # MLflow inputs/outputs are the common case: taken inline, without a call.
    if "mlflow.spanInputs" in hits and type(attrs["mlflow.spanInputs"]) is str:
        span.inputs = attrs.pop("mlflow.spanInputs")
    elif not hits.isdisjoint(_INPUT_HITS):
        span.inputs = _io(attrs, hits, INPUT_KEYS, "input.mime_type", _OI_IN, _GENAI_IN, False)
    if "mlflow.spanOutputs" in hits and type(attrs["mlflow.spanOutputs"]) is str:
        span.outputs = attrs.pop("mlflow.spanOutputs")
    elif not hits.isdisjoint(_OUTPUT_HITS):
        span.outputs = _io(attrs, hits, OUTPUT_KEYS, "output.mime_type", _OI_OUT, _GENAI_OUT, True)
    if not hits.isdisjoint(_MODEL_HITS):
        _model(span, attrs)
    if not hits.isdisjoint(_USAGE_HITS):
        _usage(span, attrs)
    if not hits.isdisjoint(_FACT_HITS):
        return _trace_facts(span, attrs)
    return None


def json_string(value: Any) -> str | None:
    """An MLflow attribute holding a JSON-encoded string (``'"LLM"'``) → ``LLM``; raw text passes."""
    if not isinstance(value, str):
        return None
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        if "\\" not in value:
            return value[1:-1]
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def _io(attrs: dict[str, Any], hits: set[str], keys: tuple[str, ...], mime_key: str, oi: _Indexed,
        genai: _Indexed, outputs: bool) -> str | None:
    mlflow_key, oi_key, genai_key, tool_key = keys
    if mlflow_key in hits:
        value = attrs.pop(mlflow_key)
        if value is not None:
            return value if isinstance(value, str) else _dumps(value)
    if oi_key in hits:
        value = attrs.pop(oi_key)
        mime = attrs.pop(mime_key, None)
        if value is not None:
            return value if isinstance(value, str) and mime == "application/json" else _dumps(value)
    for key in (genai_key, tool_key):
        if key in hits:
            value = attrs.pop(key)
            if value is not None:
                # GenAI puts JSON here; plain text (e.g. a tool result) is wrapped as a JSON string.
                return value if isinstance(value, str) and _looks_like_json(value) else _dumps(value)
    for prefix, markers, wrappers in (oi, genai):
        if markers[0] in hits or markers[1] in hits:
            messages = _pop_indexed(attrs, prefix, wrappers)
            if outputs:
                return _dumps({"choices": [_choice(i, m) for i, m in enumerate(messages)]})
            return _dumps({"messages": messages})
    return None


def _choice(index: int, message: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index}
    if isinstance(message, dict) and "finish_reason" in message:
        message = dict(message)
        choice["finish_reason"] = message.pop("finish_reason")
    choice["message"] = message
    return choice


def _looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and stripped[0] in "[{"


def _pop_indexed(attrs: dict[str, Any], prefix: str, wrappers: frozenset[str]) -> list[Any]:
    """``prefix.0.role``, ``prefix.0.tool_calls.1.name`` ... → a list of nested objects."""
    root: dict[str, Any] = {}
    taken = [key for key in attrs if key.startswith(prefix)]
    cut = len(prefix)
    for key in taken:
        node = root
        parts = key[cut:].split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = attrs.pop(key)
    items = _listify(root, wrappers)
    return items if isinstance(items, list) else [items]


def _listify(node: Any, wrappers: frozenset[str]) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k], wrappers) for k in sorted(node, key=int)]
    if len(node) == 1:
        (key, inner), = node.items()
        if key in wrappers and isinstance(inner, dict):
            return _listify(inner, wrappers)
    return {k: _listify(v, wrappers) for k, v in node.items()}


def _model(span: Span, attrs: dict[str, Any]) -> None:
    value = attrs.get("mlflow.llm.model")
    if value is not None:
        span.model = json_string(value)
        return
    for key in _MODEL_KEYS:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            span.model = value
            return


def _usage(span: Span, attrs: dict[str, Any]) -> None:
    usage = attrs.get("mlflow.chat.tokenUsage")
    if usage is not None:
        usage = _json_object(usage)
        if usage is not None:
            span.input_tokens = _int(usage.get("input_tokens"))
            span.output_tokens = _int(usage.get("output_tokens"))
            span.total_tokens = _int(usage.get("total_tokens"))
    elif "llm.token_count.prompt" in attrs or "llm.token_count.completion" in attrs \
            or "llm.token_count.total" in attrs:
        span.input_tokens = _int(attrs.get("llm.token_count.prompt"))
        span.output_tokens = _int(attrs.get("llm.token_count.completion"))
        span.total_tokens = _int(attrs.get("llm.token_count.total"))
    elif "gen_ai.usage.input_tokens" in attrs or "gen_ai.usage.prompt_tokens" in attrs \
            or "gen_ai.usage.output_tokens" in attrs or "gen_ai.usage.completion_tokens" in attrs:
        span.input_tokens = _int(_first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"))
        span.output_tokens = _int(_first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"))
        span.total_tokens = _int(attrs.get("gen_ai.usage.total_tokens"))
    if span.total_tokens is None and span.input_tokens is not None and span.output_tokens is not None:
        span.total_tokens = span.input_tokens + span.output_tokens
    cost = attrs.get("mlflow.llm.cost")
    if cost is not None:
        cost = _json_object(cost)
        if cost is not None:
            span.cost = _float(cost.get("total_cost"))
    elif "llm.cost.total" in attrs:
        span.cost = _float(attrs["llm.cost.total"])


def _trace_facts(span: Span, attrs: dict[str, Any]) -> TraceFacts | None:
    facts: TraceFacts | None = None
    root = span.parent_span_id is None
    if root:
        tags = attrs.get(ATTR_TRACE_TAGS)
        metadata = attrs.get(ATTR_TRACE_METADATA)
        request_id = attrs.get(ATTR_CLIENT_REQUEST_ID)
        usage = attrs.get(METADATA_TOKEN_USAGE)
        if tags is not None or metadata is not None or request_id is not None or usage is not None:
            facts = TraceFacts(from_root=True)
            if tags is not None:
                facts.tags = _string_map(span, ATTR_TRACE_TAGS, tags)
            if metadata is not None:
                facts.metadata = _string_map(span, ATTR_TRACE_METADATA, metadata)
            if request_id is not None:
                facts.client_request_id = json_string(request_id) or str(request_id)
            if usage is not None:
                facts.metadata[METADATA_TOKEN_USAGE] = usage if isinstance(usage, str) else _dumps(usage)
    # OpenInference puts the session and user on every span in scope, not only the root.
    session = _first(attrs, "session.id", "gen_ai.conversation.id")
    user = attrs.get("user.id")
    if session is not None or user is not None:
        if facts is None:
            facts = TraceFacts(from_root=root)
        if session is not None:
            facts.metadata.setdefault(METADATA_SESSION, _text(session))
        if user is not None:
            facts.metadata.setdefault(METADATA_USER, _text(user))
    return facts


def _string_map(span: Span, key: str, value: Any) -> dict[str, str]:
    mapping = value if isinstance(value, dict) else _json_object(value)
    if mapping is None:
        raise Unprocessable(f"span {span.name!r} (span_id {span.span_id}): attribute {key} "
                            "must be a JSON object")
    return {str(k): _text(v) for k, v in mapping.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _first(attrs: dict[str, Any], key: str, fallback: str) -> Any:
    value = attrs.get(key)
    return attrs.get(fallback) if value is None else value


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
