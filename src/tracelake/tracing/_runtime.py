"""The process-wide tracing state read on the hot path (one object, plain attributes).

``provider.configure`` fills it; spans only read it. It starts "not ready" so that the first span
resolves the configuration from the environment lazily (``import tracelake`` stays cheap).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tracelake.tracing.serialize import DEFAULT_MAX_VALUE_BYTES

if TYPE_CHECKING:
    from tracelake.tracing.processor import BatchSpanProcessor


class Runtime:
    __slots__ = ("ready", "enabled", "sampling_ratio", "max_value_bytes", "processor", "init_hook")

    def __init__(self) -> None:
        self.ready = False
        self.enabled = True
        self.sampling_ratio = 1.0
        self.max_value_bytes = DEFAULT_MAX_VALUE_BYTES
        self.processor: BatchSpanProcessor | None = None
        # Set by provider.py: resolves the configuration from the environment on first use.
        self.init_hook: Callable[[], Any] | None = None

    def ensure_ready(self) -> bool:
        """Initialise from the environment if nobody called ``configure``; return ``enabled``."""
        if not self.ready and self.init_hook is not None:
            self.init_hook()
        return self.enabled


RUNTIME = Runtime()
