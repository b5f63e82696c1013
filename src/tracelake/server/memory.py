"""Process-wide tuning for the server's processes (``tracelake server`` and its writer and
lake sync children), applied at their start, never by the library or the SDK.

Switch interval: a thread that gives up the interpreter lock for I/O (SQLite, fsync,
sockets) waits up to one switch interval (5 ms by default) to get it back while others
compute. Measured with the writer as a thread of the server process (writer_process=false):
+8% traces/s at 1 ms. The server process and the writer child use 1 ms.

Garbage collection: decoding a request allocates tens of objects per span, and with
CPython's default threshold (a young collection every 700 net allocations, an older one
every 7,000) the collector ran several times per request. A young generation of 50,000
objects (a few MB) cuts decode + prepare from 11.6 to 7.8 µs per span (bench: 50,000 spans,
same host, same run); the objects alive after start-up are frozen out of every collection.

glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and an
arena keeps what was freed in it. The server runs a writer thread and a pool of request
threads, each allocating and freeing request bodies and decoded spans: the freed memory
piles up per arena. Two arenas are plenty for a process whose Python code holds one lock.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys

log = logging.getLogger("tracelake.server")

SWITCH_INTERVAL_S = 0.001
MALLOC_ARENAS = 2
GC_YOUNG_THRESHOLD = 50_000
_M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)


def shorten_switch_interval() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; False where not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    if not ok:
        log.debug("mallopt(M_ARENA_MAX) refused")
    return ok


def tune_gc(young: int = GC_YOUNG_THRESHOLD) -> None:
    """Collect the young generation every ``young`` net allocations (older ones as before,
    relative to it), and leave what is alive now (modules, app, caches) out of collections."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
    gc.freeze()


def tune_server_process() -> None:
    """What every server process does at start: malloc arenas, garbage collection."""
    limit_malloc_arenas()
    tune_gc()


__all__ = ["GC_YOUNG_THRESHOLD", "MALLOC_ARENAS", "SWITCH_INTERVAL_S", "limit_malloc_arenas", "shorten_switch_interval",
           "tune_gc", "tune_server_process"]
