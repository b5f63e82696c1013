"""Where the lake lives: a local folder or ``s3://bucket/prefix``, and how to open its tables.

Tables live at ``{root}/{schema}/{table}``. S3 credentials and endpoint come from
``storage_options`` (delta-rs keys such as ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_ALLOW_HTTP``) or, when absent, from the usual ``AWS_*`` environment of the process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from tracelake.lake.tables import TableSpec

DEFAULT_CATALOG = "tracelake"


def normalize_root(root: str) -> str:
    """An absolute folder path, or the object-store URI without a trailing slash."""
    if "://" in root and not root.startswith("file://"):
        return root.rstrip("/")
    path = root[len("file://"):] if root.startswith("file://") else root
    return os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True)
class Lake:
    """A lake root plus what is needed to reach it. ``catalog`` is the first part of every
    table's three-part name (``catalog.schema.table``)."""

    root: str
    storage_options: dict[str, str] | None = field(default=None, repr=False)  # may hold secrets
    catalog: str = DEFAULT_CATALOG

    @classmethod
    def at(cls, root: str, storage_options: dict[str, str] | None = None,
           catalog: str = DEFAULT_CATALOG) -> Lake:
        return cls(normalize_root(root), dict(storage_options) if storage_options else None, catalog)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def uri(self, spec: TableSpec) -> str:
        return f"{self.root}/{spec.schema_name}/{spec.name}"

    def open(self, spec: TableSpec, version: int | None = None) -> DeltaTable | None:
        """The table's newest snapshot (or ``version``); None when it does not exist yet.

        (``DeltaTable.is_deltatable`` is not used: against some S3 servers it retries a
        failing listing for minutes instead of answering False.)"""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(spec), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            return None


__all__ = ["DEFAULT_CATALOG", "Lake", "normalize_root"]
