"""The tracelake server: one ASGI app (ingest, query API, UI) over a Store."""
from tracelake.server.app import create_app

__all__ = ["create_app"]
