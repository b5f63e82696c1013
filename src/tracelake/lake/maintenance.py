"""Table maintenance on a schedule: compact small files, checkpoint the log, vacuum.

Each sync commit adds a few small files; readers pay per file, so files are compacted once a
table has ``min_files`` of them. A checkpoint folds the JSON log into one Parquet file (so
opening a table reads one file, not thousands of commits) and old log entries past the
table's log retention are removed. Vacuum deletes data files no snapshot younger than
``vacuum_retention_hours`` references (compacted-away files, and files of commits that
crashed before they were committed). ``transaction_version`` (the sync's watermark) survives
all three.

A maintenance commit that races a sync commit fails one of the two; the sync retries, and
maintenance simply tries again next time.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from deltalake.exceptions import CommitFailedError

from tracelake.lake.storage import Lake
from tracelake.lake.tables import TableSpec

log = logging.getLogger("tracelake.lake")

TARGET_FILE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    table: str
    files_before: int
    files_removed: int
    files_added: int
    checkpoint_version: int | None
    vacuumed: int


def maintain(lake: Lake, spec: TableSpec, vacuum_retention_hours: float = 168.0, min_files: int = 8,
             target_file_bytes: int = TARGET_FILE_BYTES) -> MaintenanceResult | None:
    """Compact (when the table has at least ``min_files`` files), checkpoint, vacuum.
    None when the table does not exist."""
    table = lake.open(spec)
    if table is None:
        return None
    files = len(table.file_uris())
    removed = added = 0
    if files >= min_files:
        try:
            metrics = table.optimize.compact(target_size=target_file_bytes)
            removed, added = int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0))
        except CommitFailedError as exc:
            log.info("compaction of %s lost a race with a writer; next time: %s", spec.qualified, exc)
        table = lake.open(spec) or table
    table.create_checkpoint()
    table.cleanup_metadata()
    vacuumed = table.vacuum(retention_hours=int(vacuum_retention_hours), dry_run=False,
                            enforce_retention_duration=False)
    return MaintenanceResult(spec.qualified, files, removed, added, table.version(), len(vacuumed))


__all__ = ["MaintenanceResult", "maintain"]
