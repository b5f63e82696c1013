"""Turning arbitrary Python values into JSON text, safely and fast.

Inputs and outputs are encoded at the call site (agents mutate message lists after a call, so
a later encoding would record the wrong thing). ``to_json`` never raises: values orjson does not
know are converted through a few well-known protocols (pydantic, ``to_dict``, sets, bytes) and
finally through a length-capped ``repr``. Oversized results are cut and end with a visible marker.
"""
from __future__ import annotations

import base64
from typing import Any

import orjson

TRUNCATION_MARKER = "[truncated by tracelake]"
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
_REPR_LIMIT = 1000
# Tried only when the plain (faster) encoding fails: non-str dict keys, numpy arrays.
_SLOW_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

_dumps = orjson.dumps


def safe_repr(value: object) -> str:
    """``repr(value)``, capped in length; a failing ``__repr__`` gives a generic text."""
    try:
        text = repr(value)
    except Exception:  # a user's __repr__ can raise anything; we must not
        return f"<{type(value).__qualname__} object (repr failed)>"
    if len(text) > _REPR_LIMIT:
        text = text[:_REPR_LIMIT] + "..."
    return text


def json_default(value: Any) -> Any:
    """orjson's fallback for types it does not encode natively."""
    try:
        dump = getattr(value, "model_dump", None)  # pydantic v2 (openai's response objects)
        if dump is not None and callable(dump):
            return dump(mode="json")
        to_dict = getattr(value, "to_dict", None) or getattr(value, "dict", None)
        if to_dict is not None and callable(to_dict) and not isinstance(value, type):
            result = to_dict()
            if isinstance(result, dict):
                return result
        tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
        if tolist is not None and callable(tolist) and not isinstance(value, type):
            return tolist()
        if isinstance(value, (set, frozenset)):
            return list(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "base64:" + base64.b64encode(bytes(value)[:_REPR_LIMIT]).decode()
        if isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
    except Exception:  # the protocols above run user code; fall back to repr
        pass
    return safe_repr(value)


def truncate(data: bytes, limit: int) -> str:
    """Cut JSON text to about ``limit`` bytes; the result is a JSON string ending in the marker."""
    head = data[: max(limit - 120, 0)].decode("utf-8", "ignore")
    return _dumps(f"{head}... {TRUNCATION_MARKER}: {len(data)} bytes in total").decode()


def to_json_slow(value: Any) -> bytes:
    """The careful encoding, for what plain ``orjson.dumps(value, default=json_default)`` refused."""
    try:
        return _dumps(value, default=json_default, option=_SLOW_OPTIONS)
    except Exception:  # cycles, huge ints, a default() that returned garbage...
        return _dumps(safe_repr(value))


def to_json(value: Any, limit: int = DEFAULT_MAX_VALUE_BYTES) -> str:
    """Encode ``value`` as JSON text (never raises); cut to ``limit`` bytes with a marker.

    The hot paths (``@trace`` outputs, generated input captures) inline these lines: a Python
    call is a measurable part of a span's cost.
    """
    try:
        data = _dumps(value, default=json_default)
    except Exception:  # non-str keys, cycles, huge ints...: the careful path
        data = to_json_slow(value)
    if len(data) > limit:
        return truncate(data, limit)
    # decode() also matters for memory: orjson's bytes keep a 4 KiB buffer, a str is exact-size.
    return data.decode()


def attribute_value(value: Any) -> Any:
    """Normalise a user attribute: OTLP primitives (and lists of them) stay, the rest becomes JSON text."""
    t = type(value)
    if t is str or t is bool or t is float:
        return value
    if t is int:
        return value if -(2**63) <= value < 2**63 else str(value)
    if (t is list or t is tuple) and all(type(v) in (str, bool, int, float) for v in value):
        return tuple(value)
    return to_json(value)
