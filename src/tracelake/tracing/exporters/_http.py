"""POSTing export batches with the stdlib: keep-alive, gzip, retries with backoff.

Retried: connection errors and timeouts, 429 and 5xx (``Retry-After`` is honoured, capped).
Not retried: other 4xx (the payload will not get better). Failures are logged, rate-limited,
never raised, except the statuses a caller lists as ``unsupported`` (the server does not speak
this endpoint or format): ``EndpointUnsupported`` lets the caller fall back to another one.
Used from the export thread only; a forked child opens its own connection.
"""
from __future__ import annotations

import email.utils
import gzip
import http.client
import ipaddress
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracelake.tracing._log import log_rate_limited

_RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EndpointUnsupported(Exception):
    """The server answered a status the caller listed as "does not speak this endpoint"."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class HttpSender:
    def __init__(self, url: str, headers: dict[str, str], *, timeout_s: float = 10.0,
                 compress: bool = True, retry: RetryPolicy | None = None,
                 stop: threading.Event | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = dict(headers)
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self._compress = compress
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._stop = stop or threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._pid = os.getpid()

    def close(self) -> None:
        self._stop.set()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._pid != os.getpid():  # forked: never share the parent's socket
            self._conn, self._pid = None, os.getpid()
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def post(self, body: bytes, *, unsupported: frozenset[int] = frozenset()) -> bool:
        """Send ``body``; True when the server accepted it (2xx).

        Raises ``EndpointUnsupported`` when the answer's status is in ``unsupported``.
        """
        if self._compress:
            body = gzip.compress(body, compresslevel=1, mtime=0)  # fast; zlib releases the GIL
        policy = self._retry
        problem = "no attempt made"
        for attempt in range(policy.max_attempts):
            wait: float | None = None
            try:
                conn = self._connection()
                conn.request("POST", self._path, body=body, headers=self._headers)
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
                    self._conn = None
            except (OSError, http.client.HTTPException) as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                if attempt == 0 and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                                     ConnectionResetError)):
                    continue  # a stale keep-alive connection: reconnect at once
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= status < 300:
                    return True
                if status in unsupported:
                    raise EndpointUnsupported(status)
                problem = f"HTTP {status}: {payload[:200]!r}"
                if status not in _RETRY_STATUS:
                    log_rate_limited(f"http-{self.url}-{status}", logging.WARNING,
                                     "tracelake: %s rejected an export batch (%s); dropped", self.url, problem)
                    return False
                wait = parse_retry_after(resp.getheader("Retry-After"))
            if attempt + 1 >= policy.max_attempts:
                break
            if wait is None:
                wait = policy.initial_backoff_s * (2 ** attempt) * random.uniform(0.5, 1.0)
            if self._stop.wait(min(wait, policy.max_backoff_s)):
                break  # shutting down: give up instead of sleeping through exit
        log_rate_limited(f"http-{self.url}", logging.WARNING,
                         "tracelake: could not export spans to %s (%s); batch dropped", self.url, problem)
        return False
