"""Static files of the UI: content-hashed URLs, an import map, and cache-friendly responses.

Every file gets a version (a hash of its bytes). Pages link ``/static/PATH?v=VERSION`` and
an import map gives every ES module its versioned URL too, so the browser may keep them
for a year (``immutable``); a URL without the current version is answered ``no-cache``
(revalidated through the ETag). Text files are gzip'd once, in memory.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

STATIC_ROOT = Path(__file__).resolve().parent / "static"
URL_PREFIX = "/static/"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
          ".png": "image/png", ".json": "application/json", ".txt": "text/plain; charset=utf-8"}
_COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".txt")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    version: str


class Assets:
    """The files under ``root``, read once (a restart picks up changes)."""

    def __init__(self, root: Path = STATIC_ROOT) -> None:
        self.root = root
        self._files: dict[str, Asset] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file():
                rel = path.relative_to(root).as_posix()
                body = path.read_bytes()
                media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                packed = gzip.compress(body, 6, mtime=0) if path.suffix in _COMPRESSIBLE else None
                if packed is not None and len(packed) >= len(body):
                    packed = None
                self._files[rel] = Asset(body, packed, media, hashlib.sha256(body).hexdigest()[:12])

    def get(self, rel: str) -> Asset | None:
        return self._files.get(rel)

    def url(self, rel: str) -> str:
        asset = self._files.get(rel)
        if asset is None:
            raise KeyError(f"no static file {rel!r}")
        return f"{URL_PREFIX}{rel}?v={asset.version}"

    def modules(self) -> list[str]:
        """Versioned URLs of every ES module (for ``<link rel=modulepreload>``)."""
        return [self.url(rel) for rel in self._files if rel.endswith(".js")]

    @cached_property
    def import_map(self) -> str:
        """``{"imports": {"/static/js/x.js": "/static/js/x.js?v=…"}}`` for every module."""
        imports = {URL_PREFIX + rel: self.url(rel) for rel in self._files if rel.endswith(".js")}
        return json.dumps({"imports": imports}, separators=(",", ":"))
