"""The SDK's logger, with rate limiting so a dead server cannot flood the host app's logs."""
from __future__ import annotations

import logging
import time

logger = logging.getLogger("tracelake")

_last_logged: dict[str, float] = {}


def log_rate_limited(key: str, level: int, msg: str, *args: object, interval_s: float = 60.0,
                     exc_info: bool = False) -> None:
    """Log ``msg`` at most once per ``interval_s`` for ``key``. Never raises."""
    now = time.monotonic()
    last = _last_logged.get(key)
    if last is not None and now - last < interval_s:
        return
    _last_logged[key] = now
    logger.log(level, msg, *args, exc_info=exc_info)


def reset_rate_limits() -> None:
    """Forget what was logged (tests use it to see a fresh warning)."""
    _last_logged.clear()
