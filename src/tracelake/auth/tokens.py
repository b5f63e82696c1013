"""Random secrets: personal access tokens, session ids, CSRF tokens.

All are 256-bit values from ``secrets``; only their SHA-256 digest is stored. Comparisons of
secrets go through ``hmac.compare_digest``.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "tlk_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(token: str) -> str:
    """The first characters of a token, kept to tell tokens apart in listings."""
    return token[: len(TOKEN_PREFIX) + 6]


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
