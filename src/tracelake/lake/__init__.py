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
``worker``          the in-server background thread
==================  ==================================================================

See docs/lake.md for the table schemas and the exactly-once design.
"""
from __future__ import annotations

from tracelake.lake.catalog import Catalog
from tracelake.lake.storage import Lake
from tracelake.lake.sync import APP_ID, LakeSync, SyncResult
from tracelake.lake.writer import CommitResult, DeltaWriter

__all__ = ["APP_ID", "Catalog", "CommitResult", "DeltaWriter", "Lake", "LakeSync", "SyncResult"]
