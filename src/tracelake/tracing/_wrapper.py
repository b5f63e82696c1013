"""The ``@trace`` wrapper of a sync or async function, generated from source text.

When the traced object is a plain Python function, the wrapper is written with that function's
own signature (defaults included): a call then costs no ``*args``/``**kwargs`` packing, the
inputs dict is a literal of the parameters, and no capture function is called. ``to_json`` is
inlined for the inputs and the output. This is the SDK's hot path (``bench/sdk_overhead.py``):
every Python call avoided here is a few percent of a span's cost.

Anything else (builtins, callable objects, partials, functions with a ``__signature__`` or a
parameter named ``_tl_*``) gets the same code over ``(*args, **kwargs)``, with the inputs from
``_capture.make_capture``. A call that does not match the function's signature raises its
``TypeError`` before any span starts, as calling the function itself does.
"""
from __future__ import annotations

import inspect
import types
from typing import Any, Callable

import orjson

from tracelake.tracing._capture import make_capture
from tracelake.tracing._runtime import RUNTIME
from tracelake.tracing.serialize import json_default, to_json_slow, truncate
from tracelake.tracing.span import CURRENT, Span

_P = inspect.Parameter

# Every name of the generated code starts with _tl_ so that no parameter can shadow one.
_TEMPLATE = '''\
def _tl_make(_tl_fn, _tl_name, _tl_type, _tl_attrs, _tl_capture, {defaults}):
    _tl_current = _tl_CURRENT
    _tl_rt = _tl_RUNTIME

    {async_}def _tl_traced({params}):
        if not (_tl_rt.enabled if _tl_rt.ready else _tl_rt.ensure_ready()):
            return {await_}_tl_fn({call})
        _tl_span = _tl_Span(_tl_name, _tl_type, _tl_current.get())
        _tl_token = _tl_current.set(_tl_span)
        if _tl_span._sampled:
{inputs}
            if _tl_attrs:
                _tl_span._attributes = _tl_attrs.copy()
        try:
            _tl_result = {await_}_tl_fn({call})
        except BaseException as _tl_exc:
            _tl_current.reset(_tl_token)
            _tl_span.fail(_tl_exc)
            raise
        _tl_current.reset(_tl_token)
        if _tl_span._sampled:
{outputs}
        _tl_span.end()
        return _tl_result

    return _tl_traced
'''

# to_json(value, max_value_bytes) into a span slot, inlined.
_TO_JSON = '''\
            try:
                _tl_data = _tl_dumps({value}, default=_tl_json_default)
            except Exception:
                _tl_data = _tl_to_json_slow({value})
            _tl_limit = _tl_rt.max_value_bytes
            _tl_span.{slot} = _tl_data.decode() if len(_tl_data) <= _tl_limit else _tl_truncate(_tl_data, _tl_limit)'''

_GLOBALS = {"_tl_CURRENT": CURRENT, "_tl_RUNTIME": RUNTIME, "_tl_Span": Span, "_tl_dumps": orjson.dumps,
            "_tl_json_default": json_default, "_tl_to_json_slow": to_json_slow, "_tl_truncate": truncate}


def make_wrapper(fn: Callable[..., Any], name: str, span_type: str, attrs: dict[str, Any] | None,
                 is_async: bool) -> Callable[..., Any]:
    """The traced version of ``fn`` (not yet ``functools.wraps``'d)."""
    exact = _exact_signature(fn)
    if exact is None:
        params = call = "*_tl_args, **_tl_kwargs"
        inputs = "            _tl_span._inputs = _tl_capture(_tl_args, _tl_kwargs)"
        defaults: list[Any] = []
        capture = make_capture(fn)
    else:
        params, call, inputs_literal, defaults = exact
        inputs = (f"            _tl_inputs = {inputs_literal}\n"
                  + _TO_JSON.format(value="_tl_inputs", slot="_inputs"))
        capture = None
    source = _TEMPLATE.format(
        defaults=", ".join(f"_tl_d{i}" for i in range(len(defaults))), async_="async " if is_async else "",
        await_="await " if is_async else "", params=params, call=call, inputs=inputs,
        outputs=_TO_JSON.format(value="_tl_result", slot="_outputs"))
    namespace = dict(_GLOBALS)
    exec(compile(source, f"<tracelake wrapper of {name}>", "exec"), namespace)  # noqa: S102 - names are identifiers
    return namespace["_tl_make"](fn, name, span_type, attrs, capture, *defaults)  # type: ignore[no-any-return]


def _exact_signature(fn: Callable[..., Any]) -> tuple[str, str, str, list[Any]] | None:
    """``(parameters, call arguments, inputs dict literal, defaults)`` in source form, or None."""
    if type(fn) is not types.FunctionType or "__signature__" in fn.__dict__:
        return None
    try:
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    plist = list(sig.parameters.values())
    if any(p.name.startswith("_tl_") for p in plist):
        return None
    params: list[str] = []
    call: list[str] = []
    items: list[str] = []
    defaults: list[Any] = []
    star = False  # a bare "*" or "*args" has been written
    for i, p in enumerate(plist):
        default = ""
        if p.default is not _P.empty:
            default = f"=_tl_d{len(defaults)}"
            defaults.append(p.default)
        if p.kind is _P.VAR_POSITIONAL:
            params.append(f"*{p.name}")
            call.append(f"*{p.name}")
            star = True
        elif p.kind is _P.VAR_KEYWORD:
            params.append(f"**{p.name}")
            call.append(f"**{p.name}")
        elif p.kind is _P.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            params.append(p.name + default)
            call.append(f"{p.name}={p.name}")
        else:
            params.append(p.name + default)
            call.append(p.name)
            if p.kind is _P.POSITIONAL_ONLY and (i + 1 == len(plist) or plist[i + 1].kind is not _P.POSITIONAL_ONLY):
                params.append("/")
        if i == 0 and p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD) and p.name in ("self", "cls"):
            continue  # left out of the inputs, as in make_capture
        items.append(f"{p.name!r}: {p.name}")
    return ", ".join(params), ", ".join(call), "{" + ", ".join(items) + "}", defaults
