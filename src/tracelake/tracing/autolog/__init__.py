"""Automatic tracing of popular clients: ``tracelake.autolog.openai()``."""
from __future__ import annotations


def openai(disable: bool = False) -> None:
    """Trace the ``openai`` client (sync, async, streaming): chat completions, responses,
    embeddings. ``disable=True`` removes the patches."""
    from tracelake.tracing.autolog import _openai

    if disable:
        _openai.unpatch()
    else:
        _openai.patch()


__all__ = ["openai"]
