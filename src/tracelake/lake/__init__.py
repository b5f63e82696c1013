"""The lake: traces, spans and assessments as Delta tables any engine reads.

==================  ==================================================================
module              what
==================  ==================================================================
``tables``          table specs: Arrow schemas, partitioning, keys (also the gateway's)
``storage``         ``Lake``: a folder or ``s3://`` root, opening tables
``writer``          ``DeltaWriter``: exactly-once append / upsert with app transactions
``source``          reading the SQL store's change sets (seq ranges) as Arrow
``sync``            ``LakeSync``: bounded chunks, per-table watermarks
``maintenance``     compaction, checkpoints, vacuum
``catalog``         ``catalog.schema.table`` names, table state, SELECT grants
``sql``             read-only SQL (sqlglot checks, DuckDB runs)
``worker``          the server's sync: a child process (or a thread)
==================  ==================================================================

See docs/lake.md for the table schemas and the exactly-once design.

The names below are imported on first use: ``tracelake.lake.worker`` is imported by every
server, and must not load pyarrow and deltalake into a process that never syncs.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"APP_ID": "sync", "Catalog": "catalog", "CommitResult": "writer", "DeltaWriter": "writer",
            "Lake": "storage", "LakeSync": "sync", "SyncResult": "sync"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tracelake.lake' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tracelake.lake.{module}"), name)


__all__ = ["APP_ID", "Catalog", "CommitResult", "DeltaWriter", "Lake", "LakeSync", "SyncResult"]
