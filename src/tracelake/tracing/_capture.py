"""Turning a call's arguments into the span's inputs (a dict of parameter name to value), fast.

At decoration time the signature is inspected once. For a function whose parameters are all
positional (no ``*args``/``**kwargs``/keyword-only; the common case) a small function is
generated that builds the inputs dict as a literal for each accepted argument count, with the
defaults filled in; a call passing keywords goes through ``inspect.Signature.bind``.
``self`` and ``cls`` (as first parameter) are left out.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import orjson

from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.serialize import json_default, to_json, to_json_slow, truncate

Capture = Callable[[tuple[Any, ...], dict[str, Any]], str]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def make_capture(fn: Callable[..., Any]) -> Capture:
    """Build the function that encodes ``(args, kwargs)`` of a call to ``fn`` as JSON text."""
    rt = RUNTIME
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature
        def capture_raw(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            return to_json({"args": args, "kwargs": kwargs}, rt.max_value_bytes)
        return capture_raw

    params = list(sig.parameters.values())
    skip = params[0].name if params and params[0].kind in _POSITIONAL and params[0].name in ("self", "cls") else None

    def bind_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:  # the call itself will fail; record what was passed
            return to_json({"args": args, "kwargs": kwargs}, rt.max_value_bytes)
        bound.apply_defaults()
        inputs = dict(bound.arguments)
        if skip is not None:
            inputs.pop(skip, None)
        return to_json(inputs, rt.max_value_bytes)

    if not all(p.kind in _POSITIONAL for p in params):
        return bind_slow
    return _generate_positional(params, skip is not None, bind_slow)


def _generate_positional(params: list[inspect.Parameter], skip_first: bool, slow: Capture) -> Capture:
    """Generate ``capture(args, kwargs)`` with one dict literal per accepted argument count."""
    namespace: dict[str, Any] = {"_slow": slow, "_rt": RUNTIME, "_dumps": orjson.dumps, "_json_default": json_default,
                                 "_to_json_slow": to_json_slow, "_truncate": truncate}
    n = len(params)
    lines = ["def capture(args, kwargs):", "    if kwargs:", "        return _slow(args, kwargs)",
             "    k = len(args)"]
    for k in range(n, -1, -1):  # k positional arguments given; the rest must have defaults
        if any(p.default is inspect.Parameter.empty for p in params[k:]):
            break
        items = []
        for i, p in enumerate(params):
            if i == 0 and skip_first:
                continue
            if i < k:
                items.append(f"{p.name!r}: args[{i}]")
            else:
                namespace[f"_d{i}"] = p.default
                items.append(f"{p.name!r}: _d{i}")
        lines.append(f"    {'if' if k == n else 'elif'} k == {k}:")
        lines.append(f"        inputs = {{{', '.join(items)}}}")
    lines += ["    else:",
              "        return _slow(args, kwargs)",
              # to_json(inputs, _rt.max_value_bytes), inlined
              "    try:",
              "        data = _dumps(inputs, default=_json_default)",
              "    except Exception:",
              "        data = _to_json_slow(inputs)",
              "    limit = _rt.max_value_bytes",
              "    return data.decode() if len(data) <= limit else _truncate(data, limit)"]
    exec("\n".join(lines), namespace)  # noqa: S102 - parameter names are identifiers, quoted by repr
    return namespace["capture"]  # type: ignore[no-any-return]
