"""Turn the credentials of a request into a ``Principal``.

Accepted, in this order: ``Authorization: Bearer <personal access token>``,
``Authorization: Basic <user:password>`` (what the mlflow client sends for
``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_TRACKING_USERNAME`` + ``PASSWORD``), then the UI's session
cookie. Credentials that are present but wrong answer 401 — they never fall back to anonymous.

Verified credentials are cached for a few seconds under an HMAC of the credential (keyed with a
per-process random key), because an argon2 verification per request would make basic auth
cost ~50 ms a call. Any change in this process (revocation, password change, membership)
clears the cache at once; a change made by another process (the CLI) is seen within the TTL.
Nothing here logs a credential.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time

from tracelake.auth.model import Principal, User
from tracelake.auth.ratelimit import FailureLimiter
from tracelake.auth.store import AuthStore
from tracelake.errors import Unauthenticated

log = logging.getLogger("tracelake.auth")

SESSION_COOKIE = "tracelake_session"


class _Cache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._key = secrets.token_bytes(32)
        self._items: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def key(self, kind: str, credential: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{credential}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def get(self, key: bytes) -> Principal | None:
        hit = self._items.get(key)
        if hit is None or hit[1] <= time.monotonic():
            return None
        return hit[0]

    def put(self, key: bytes, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (principal, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Authenticator:
    def __init__(self, store: AuthStore, per_user: FailureLimiter, per_client: FailureLimiter,
                 cache_ttl_s: float = 10.0) -> None:
        self.store = store
        self.per_user = per_user
        # Counted separately and allowed more: behind a proxy, many people share one address.
        self.per_client = per_client
        self._cache = _Cache(cache_ttl_s)
        store.on_change(self._cache.clear)

    def principal(self, user: User, via: str, csrf_token: str | None = None) -> Principal:
        return Principal(user.user_id, user.username, user.is_admin, self.store.group_ids(user.user_id), via,
                         csrf_token)

    def login(self, username: str, password: str, client: str) -> User:
        """The user for a name and password; 401 when wrong, 429 after too many failures."""
        user_key = username.lower()
        self.per_user.check(user_key)
        self.per_client.check(client)
        user = self.store.check_password(username, password)
        if user is None:
            self.per_user.failed(user_key)
            self.per_client.failed(client)
            log.info("failed sign-in from %s", client)
            raise Unauthenticated("invalid user name or password")
        self.per_user.succeeded(user_key)
        return user

    def authenticate(self, authorization: str | None, session: str | None, client: str) -> Principal | None:
        """The principal behind a request's credentials, None when it sent none (or a stale session)."""
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            scheme, value = scheme.lower(), value.strip()
            if scheme == "bearer" and value:
                return self._bearer(value, client)
            if scheme == "basic" and value:
                return self._basic(value, client)
            raise Unauthenticated("unsupported Authorization header: use 'Bearer <token>' or HTTP basic auth")
        if session:
            found = self.store.session_user(session)
            return self.principal(found[0], "session", found[1]) if found else None
        return None

    def _bearer(self, token: str, client: str) -> Principal:
        key = self._cache.key("bearer", token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.per_client.check(client)
        user = self.store.user_for_token(token)
        if user is None:
            self.per_client.failed(client)
            log.info("rejected a token from %s", client)
            raise Unauthenticated("invalid, expired or revoked token")
        principal = self.principal(user, "token")
        self._cache.put(key, principal)
        return principal

    def _basic(self, value: str, client: str) -> Principal:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed basic credentials") from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise Unauthenticated("malformed basic credentials")
        key = self._cache.key("basic", decoded)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        principal = self.principal(self.login(username, password, client), "basic")
        self._cache.put(key, principal)
        return principal
