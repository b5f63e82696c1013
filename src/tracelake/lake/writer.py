"""``DeltaWriter``: exactly-once commits to lake tables, for the sync and (later) the gateway.

Every commit carries an application transaction ``(app_id, version)`` (Delta's ``txn``
action) in the same atomic log entry as its rows. Before writing, the writer reads the
table's committed version for ``app_id`` on the snapshot it then commits against: a
``version`` at or below it was already committed and is skipped. So a writer that crashes
anywhere and redoes its work neither loses nor duplicates rows; a concurrent writer of the
same ``app_id`` makes the commit fail (``CommitFailedError``), and the writer reloads and
checks again.

Three ways to land rows, chosen by the caller:

- ``append``: rows that cannot be in the table yet (new spans, new traces, gateway requests).
  Cheap whatever the table's size.
- ``upsert``: ``MERGE`` on the table's key: matched rows are updated, new ones inserted, and
  rows of the ``replace`` groups (``spec.group``, else the key) that the source no longer
  has are deleted — in one commit. Costs a scan of the table, so it is used only for rows
  that may already be there.
- ``upsert`` with only ``delete`` groups: a ``DELETE`` (tombstones).

An empty change still commits (an empty append) so the watermark moves on; so does a
DELETE or MERGE that found nothing to change (delta-rs writes no commit for those).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from tracelake.lake.storage import Lake
from tracelake.lake.tables import TableSpec

log = logging.getLogger("tracelake.lake")

MAX_COMMIT_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class CommitResult:
    table: str  # schema.table
    mode: str  # append | merge | delete | skipped
    rows: int  # rows offered (inserted or upserted)
    deleted_groups: int
    delta_version: int | None  # the table version this commit made (None when skipped)


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(sql_literal(v) for v in sorted(set(values)))})"


class DeltaWriter:
    """Exactly-once writes to the tables of one ``Lake`` (thread-safe per table)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._tables: dict[str, DeltaTable] = {}  # open tables of a local lake, by uri
        self._lock = threading.RLock()  # one commit at a time: they share the open tables

    # -- tables ------------------------------------------------------------------------------
    def _open(self, spec: TableSpec) -> DeltaTable | None:
        """The table's newest snapshot (None when absent).

        Opening a table replays its log from the last checkpoint; a sync step needs each table
        three or four times, so on a local lake the open table is kept and brought up to date
        with ``update_incremental`` (reads only the newer log entries). It is dropped when its
        current log entry is gone (the table was deleted or re-created under us)."""
        uri = self.lake.uri(spec)
        table = self._tables.get(uri)
        if table is not None:
            if os.path.exists(os.path.join(uri, "_delta_log", f"{table.version():020d}.json")):
                table.update_incremental()
                return table
            del self._tables[uri]
        table = self.lake.open(spec)
        if table is not None and self.lake.is_local:
            self._tables[uri] = table
        return table

    def ensure_table(self, spec: TableSpec) -> DeltaTable:
        """Open the table, creating it (empty, with its schema and partitioning) if absent."""
        table = self._open(spec)
        if table is not None:
            return table
        uri = self.lake.uri(spec)
        try:
            DeltaTable.create(uri, spec.schema, partition_by=list(spec.partition_by) or None, mode="ignore",
                              name=spec.name, description=spec.description,
                              storage_options=self.lake.storage_options)
        except (CommitFailedError, DeltaError) as exc:  # created concurrently by another writer
            log.debug("creating %s raced another writer: %s", uri, exc)
        table = self._open(spec)
        if table is None:
            raise RuntimeError(f"lake table {uri} could not be created")
        return table

    def watermark(self, spec: TableSpec, app_id: str) -> int | None:
        """The newest version committed for ``app_id`` (None when none, or no table)."""
        with self._lock:
            table = self._open(spec)
            return None if table is None else table.transaction_version(app_id)

    # -- writes ------------------------------------------------------------------------------
    def append(self, spec: TableSpec, rows: pa.Table, app_id: str, version: int) -> CommitResult:
        rows = conform(spec, rows)

        def op(table: DeltaTable, props: CommitProperties) -> str:
            write_deltalake(table, rows, mode="append", commit_properties=props)
            return "append"
        return self._commit(spec, app_id, version, op, rows.num_rows, 0)

    def upsert(self, spec: TableSpec, rows: pa.Table, app_id: str, version: int,
               replace: Iterable[str] = (), delete: Iterable[str] = ()) -> CommitResult:
        """Merge ``rows`` on ``spec.key``; delete the rows of ``delete`` groups, and those of
        ``replace`` groups that ``rows`` does not have (see the module docstring)."""
        rows = conform(spec, rows)
        group_col = spec.group or spec.key[0]
        drop = set(replace) | set(delete)

        def op(table: DeltaTable, props: CommitProperties) -> str:
            if rows.num_rows == 0 and not drop:
                write_deltalake(table, rows, mode="append", commit_properties=props)
                return "append"
            if rows.num_rows == 0:
                table.delete(in_list(group_col, drop), commit_properties=props)
                return "delete"
            on = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
            merger = (table.merge(rows, on, source_alias="s", target_alias="t", commit_properties=props)
                      .when_matched_update_all().when_not_matched_insert_all())
            if drop:
                merger = merger.when_not_matched_by_source_delete(in_list(f"t.{group_col}", drop))
            merger.execute()
            return "merge"
        return self._commit(spec, app_id, version, op, rows.num_rows, len(set(delete)))

    def _commit(self, spec: TableSpec, app_id: str, version: int,
                op: Callable[[DeltaTable, CommitProperties], str], rows: int, deleted: int) -> CommitResult:
        with self._lock:
            return self._commit_locked(spec, app_id, version, op, rows, deleted)

    def _commit_locked(self, spec: TableSpec, app_id: str, version: int,
                       op: Callable[[DeltaTable, CommitProperties], str], rows: int, deleted: int) -> CommitResult:
        props = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=version)])
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            table = self.ensure_table(spec)  # check and write on the SAME snapshot
            done = table.transaction_version(app_id)
            if done is not None and version <= done:
                return CommitResult(spec.qualified, "skipped", 0, 0, None)
            before = table.version()
            try:
                mode = op(table, props)
                if table.version() == before:  # a DELETE/MERGE that changed nothing commits nothing:
                    write_deltalake(table, spec.schema.empty_table(), mode="append", commit_properties=props)
            except CommitFailedError as exc:
                if attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                log.info("commit to %s conflicted (%s); retrying on a fresh snapshot", spec.qualified, exc)
                time.sleep(min(0.05 * 2 ** attempt, 1.0))
                continue
            return CommitResult(spec.qualified, mode, rows, deleted, table.version())
        raise AssertionError("unreachable")


def conform(spec: TableSpec, rows: pa.Table) -> pa.Table:
    """``rows`` with exactly the table's columns, in order and type (missing ones null)."""
    if rows.schema.equals(spec.schema):
        return rows
    columns = []
    for fld in spec.schema:
        if fld.name in rows.column_names:
            columns.append(rows.column(fld.name).cast(fld.type))
        else:
            columns.append(pa.nulls(rows.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=spec.schema)


__all__ = ["CommitResult", "DeltaWriter", "conform", "in_list", "sql_literal"]
