"""W3C Trace Context (``traceparent``) across process boundaries.

Outgoing request (client side)::

    headers = tracelake.inject({})          # adds "traceparent" for the current span
    requests.post(url, headers=headers)

Incoming request (server side; works whatever SDK the caller used, OpenTelemetry included)::

    with tracelake.continue_trace(request.headers):
        handle(request)                      # its spans join the caller's trace
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Mapping, MutableMapping

from tracelake.tracing.span import CURRENT, RemoteParent, Span

TRACEPARENT = "traceparent"
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_traceparent(value: str | None) -> RemoteParent | None:
    """Parse a ``traceparent`` header; None when missing or invalid (per the W3C rules)."""
    if not value:
        return None
    match = _TRACEPARENT_RE.match(value.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return RemoteParent(trace_id, span_id, bool(int(flags, 16) & 1))


def _get_header(carrier: Mapping[str, Any], name: str) -> str | None:
    value = carrier.get(name)
    if value is None:
        # HTTP headers are case-insensitive; plain dicts are not.
        for key, val in carrier.items():
            if isinstance(key, str) and key.lower() == name:
                value = val
                break
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value


def inject(carrier: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Add ``traceparent`` for the current span (if any) to ``carrier`` and return it."""
    carrier = {} if carrier is None else carrier
    current = CURRENT.get()
    if current.__class__ is Span:
        carrier[TRACEPARENT] = format_traceparent(current._trace_id, current._span_id,  # type: ignore[union-attr]
                                                  current._sampled)  # type: ignore[union-attr]
    elif current is not None:  # a remote parent with no local span: pass it on unchanged
        carrier[TRACEPARENT] = format_traceparent(current.trace_id, current.span_id,  # type: ignore[union-attr]
                                                  current.sampled)  # type: ignore[union-attr]
    return carrier


def extract(carrier: Mapping[str, Any]) -> RemoteParent | None:
    """The remote parent in ``carrier``'s ``traceparent`` header, or None."""
    return parse_traceparent(_get_header(carrier, TRACEPARENT))


@contextlib.contextmanager
def continue_trace(carrier: Mapping[str, Any]) -> Iterator[RemoteParent | None]:
    """Make the caller's span (from ``traceparent``) the parent of spans started in this block.

    Without a valid header the block runs unchanged and spans start a new trace.
    """
    parent = extract(carrier)
    if parent is None:
        yield None
        return
    token = CURRENT.set(parent)
    try:
        yield parent
    finally:
        CURRENT.reset(token)
