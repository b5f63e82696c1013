"""The lake catalog: tables named ``catalog.schema.table``, their state, and SELECT grants.

Built-in tables (``monitoring.traces|spans|assessments``, ``gateway.endpoint_usage``) are
always known; tables created later by other writers (the gateway's ``inference_<endpoint>``)
are registered in a small Delta table at ``{root}/_catalog/tables``, so the catalog works
the same on a folder and on S3.

Grants are the access-control grants (``tracelake.auth``): privilege ``SELECT`` on securable
type ``table``, securable id the full name ``catalog.schema.table``, given to users or
groups. Admins may read every table; with auth off there is nobody to check.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from tracelake.errors import InvalidRequest, NotFound
from tracelake.lake.storage import Lake
from tracelake.lake.tables import ENDPOINT_USAGE, GATEWAY, SYNCED, TableSpec, inference_table

if TYPE_CHECKING:
    from tracelake.auth.grants import GrantStore
    from tracelake.auth.model import Principal

REGISTRY = TableSpec("_catalog", "tables", pa.schema([
    ("schema_name", pa.string()), ("table_name", pa.string()), ("created_at_ms", pa.int64())]))

BUILTIN: tuple[TableSpec, ...] = (*SYNCED, ENDPOINT_USAGE)

# Names of the tables a principal may SELECT from, among ``names`` (full names).
GrantCheck = Callable[["Principal", list[str]], set[str]]


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the monitoring page shows of a table."""

    name: str  # catalog.schema.table
    location: str
    description: str
    exists: bool
    delta_version: int | None = None
    rows: int | None = None
    files: int | None = None
    size_bytes: int | None = None
    last_commit_ms: int | None = None  # when the newest commit was written
    synced_through_seq: int | None = None  # synced tables: the store change seq the table has
    store_seq: int | None = None  # the store's newest change seq
    lag_s: float | None = None  # 0 when caught up, else seconds since the table's last commit
    columns: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = [{"name": n, "type": t} for n, t in self.columns]
        return out


class Catalog:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    # -- names ---------------------------------------------------------------------------
    def full_name(self, spec: TableSpec) -> str:
        return f"{self.lake.catalog}.{spec.qualified}"

    def specs(self) -> list[TableSpec]:
        """Every known table: the built-ins, then the registered ones."""
        out = list(BUILTIN)
        seen = {s.qualified for s in out}
        for spec in self._registered():
            if spec.qualified not in seen:
                seen.add(spec.qualified)
                out.append(spec)
        return out

    def resolve(self, parts: Iterable[str]) -> TableSpec:
        """The table named by ``table``, ``schema.table`` or ``catalog.schema.table``."""
        names = [p.lower() for p in parts]
        if not 1 <= len(names) <= 3:
            raise InvalidRequest(f"invalid table name {'.'.join(names)!r}")
        if len(names) == 3:
            if names[0] != self.lake.catalog.lower():
                raise NotFound(f"no catalog {names[0]!r} (this lake's catalog is {self.lake.catalog!r})")
            names = names[1:]
        matches = [s for s in self.specs()
                   if s.name == names[-1] and (len(names) == 1 or s.schema_name == names[0])]
        if not matches:
            raise NotFound(f"no lake table {'.'.join(names)!r}")
        if len(matches) > 1:
            raise InvalidRequest(f"table name {names[-1]!r} is ambiguous: qualify it with its schema")
        return matches[0]

    # -- registry ------------------------------------------------------------------------
    def register(self, spec: TableSpec) -> None:
        """Make a table created by another writer (the gateway) known to the catalog."""
        if spec.qualified in {s.qualified for s in self.specs()}:
            return
        row = pa.table({"schema_name": [spec.schema_name], "table_name": [spec.name],
                        "created_at_ms": [int(time.time() * 1000)]}, schema=REGISTRY.schema)
        write_deltalake(self.lake.uri(REGISTRY), row, mode="append", storage_options=self.lake.storage_options)

    def _registered(self) -> list[TableSpec]:
        table = self.lake.open(REGISTRY)
        if table is None:
            return []
        out = []
        for r in pa.table(table.to_pyarrow_table(columns=["schema_name", "table_name"])).to_pylist():
            if r["schema_name"] == GATEWAY and r["table_name"].startswith("inference_"):
                out.append(inference_table(r["table_name"][len("inference_"):]))
        return out

    # -- state ---------------------------------------------------------------------------
    def info(self, spec: TableSpec, store_seq: int | None = None, sync_app_id: str | None = None) -> TableInfo:
        table = self.lake.open(spec)
        base = {"name": self.full_name(spec), "location": self.lake.uri(spec), "description": spec.description,
                "columns": tuple((f.name, str(f.type)) for f in spec.schema)}
        if table is None:
            return TableInfo(exists=False, store_seq=store_seq, **base)
        return table_info(table, base, store_seq, sync_app_id if spec in SYNCED else None)

    def infos(self, store_seq: int | None = None, sync_app_id: str | None = None,
              names: set[str] | None = None) -> list[TableInfo]:
        """Info on every known table (only those in ``names`` when given)."""
        return [self.info(s, store_seq, sync_app_id) for s in self.specs()
                if names is None or self.full_name(s) in names]


def table_info(table: DeltaTable, base: dict[str, Any], store_seq: int | None,
               sync_app_id: str | None) -> TableInfo:
    actions = pa.table(table.get_add_actions(flatten=True))
    rows = int(pc.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0
    size = int(pc.sum(actions.column("size_bytes")).as_py() or 0) if actions.num_rows else 0
    history = table.history(1)
    last_commit = int(history[0]["timestamp"]) if history else None
    synced = table.transaction_version(sync_app_id) if sync_app_id else None
    lag = None
    if sync_app_id and store_seq is not None:
        caught_up = synced is not None and synced >= store_seq
        lag = 0.0 if caught_up or last_commit is None else max(0.0, time.time() - last_commit / 1000)
    return TableInfo(exists=True, delta_version=table.version(), rows=rows, files=actions.num_rows,
                     size_bytes=size, last_commit_ms=last_commit, synced_through_seq=synced, store_seq=store_seq,
                     lag_s=lag, **base)


def auth_grant_check(grants: GrantStore) -> GrantCheck:
    """A ``GrantCheck`` over the access-control grants (``tracelake.auth.grants.GrantStore``)."""
    from tracelake.auth.model import SecurableType

    def check(principal: Principal, names: list[str]) -> set[str]:
        if principal.is_admin:
            return set(names)
        ranks = grants.ranks(principal, SecurableType.TABLE, names)
        return {n for n in names if ranks.get(n, 0) >= 1}
    return check


__all__ = ["BUILTIN", "Catalog", "GrantCheck", "REGISTRY", "TableInfo", "auth_grant_check"]
