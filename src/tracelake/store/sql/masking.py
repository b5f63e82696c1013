"""Storage of server-side masking rules (the ingest pipeline applies them).

A rule is per experiment, or global when ``experiment_id`` is None. ``kind`` is
``"regex"`` (mask matches in text) or ``"attribute_key"`` (mask the value of a key).
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, insert, or_, select

from tracelake.errors import InvalidRequest, NotFound
from tracelake.store.sql.core import StoreCore, exp_id_int, experiment_row
from tracelake.store.sql.schema import masking_rules

MASKING_KINDS = ("regex", "attribute_key")


class MaskingMixin(StoreCore):
    def list_masking_rules(self, experiment_id: str | None = None) -> list[dict[str, Any]]:
        """Rules for one experiment plus the global ones (experiment_id NULL); all when None."""
        stmt = select(masking_rules).order_by(masking_rules.c.rule_id)
        if experiment_id is not None:
            eid = exp_id_int(experiment_id)
            stmt = stmt.where(or_(masking_rules.c.experiment_id == eid, masking_rules.c.experiment_id.is_(None)))
        with self.read() as conn:
            return [
                {"rule_id": r.rule_id, "experiment_id": None if r.experiment_id is None else str(r.experiment_id),
                 "kind": r.kind, "pattern": r.pattern, "replacement": r.replacement}
                for r in conn.execute(stmt)
            ]

    def add_masking_rule(self, kind: str, pattern: str, replacement: str = "[MASKED]",
                         experiment_id: str | None = None) -> int:
        if kind not in MASKING_KINDS:
            raise InvalidRequest(f"Invalid masking rule kind {kind!r}: expected one of {', '.join(MASKING_KINDS)}")
        if not pattern:
            raise InvalidRequest("Masking rule pattern must be a non-empty string")
        if kind == "regex":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidRequest(f"Invalid masking regex {pattern!r}: {exc}") from None
        with self.transaction() as conn:
            eid = None if experiment_id is None else experiment_row(conn, experiment_id).experiment_id
            return int(conn.execute(insert(masking_rules).values(
                experiment_id=eid, kind=kind, pattern=pattern, replacement=replacement,
            ).returning(masking_rules.c.rule_id)).scalar_one())

    def delete_masking_rule(self, rule_id: int) -> None:
        with self.transaction() as conn:
            if conn.execute(delete(masking_rules).where(masking_rules.c.rule_id == int(rule_id))).rowcount == 0:
                raise NotFound(f"No masking rule with id {rule_id}")
