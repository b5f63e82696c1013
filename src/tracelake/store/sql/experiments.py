"""Experiments: create, read, search, rename, soft delete/restore, tags.

Experiment "0" ("Default") is created by the initial migration; user experiments get 1, 2, ...
from the database's id sequence. ``artifact_location`` defaults to ``{artifact_root}/{id}``.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tracelake.entities import Experiment
from tracelake.entities.experiment import DEFAULT_EXPERIMENT_ID
from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.artifacts import join_uri
from tracelake.store.base import Page
from tracelake.store.migrations import set_default_artifact_location
from tracelake.store.sql.core import (
    StoreCore,
    decode_token,
    dialect_insert,
    encode_token,
    exp_id_int,
    now_ms,
)
from tracelake.store.sql.schema import experiment_tags, experiments

ACTIVE = "active"
DELETED = "deleted"
_VIEW_TYPES = {"ACTIVE_ONLY": [ACTIVE], "DELETED_ONLY": [DELETED], "ALL": [ACTIVE, DELETED]}
_ORDER_COLUMNS = {"name": experiments.c.name, "creation_time": experiments.c.creation_time,
                  "last_update_time": experiments.c.last_update_time,
                  "experiment_id": experiments.c.experiment_id}
# The filter grammar for experiments is deliberately small: one name comparison.
_NAME_FILTER = re.compile(
    r"""^\s*(?:attributes\.)?name\s+(=|!=|LIKE|ILIKE)\s+(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)")\s*$""",
    re.IGNORECASE,
)
MAX_EXPERIMENT_RESULTS = 50_000


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("Experiment name must be a non-empty string")
    if len(name) > 500:
        raise InvalidRequest("Experiment name must be at most 500 characters")
    return name


class ExperimentsMixin(StoreCore):
    def ensure_default_experiment(self) -> None:
        """Fill in the Default experiment's artifact location (only the server knows its root)."""
        set_default_artifact_location(self.engine, self.artifact_root)

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        name = _name(name)
        now = now_ms()
        try:
            with self.transaction() as conn:
                new_id = conn.execute(
                    insert(experiments)
                    .values(name=name, artifact_location=artifact_location or "", lifecycle_stage=ACTIVE,
                            creation_time=now, last_update_time=now, trace_count=0)
                    .returning(experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(update(experiments).where(experiments.c.experiment_id == new_id)
                                 .values(artifact_location=join_uri(self.artifact_root, str(new_id))))
                if tags:
                    conn.execute(insert(experiment_tags), [
                        {"experiment_id": new_id, "key": k, "value": v} for k, v in tags.items()])
        except IntegrityError:
            if self.get_experiment_by_name(name) is not None:
                raise AlreadyExists(f"Experiment '{name}' already exists.") from None
            raise
        return str(new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        eid = exp_id_int(experiment_id)
        with self.read() as conn:
            row = conn.execute(select(experiments).where(experiments.c.experiment_id == eid)).first()
            if row is None:
                raise NotFound(f"No experiment with id '{experiment_id}'")
            return self._load_experiments(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.read() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
            return None if row is None else self._load_experiments(conn, [row])[0]

    def search_experiments(self, view_type: str = "ACTIVE_ONLY", max_results: int = 1000,
                           page_token: str | None = None, filter_string: str | None = None,
                           order_by: list[str] | None = None) -> Page[Experiment]:
        stages = _VIEW_TYPES.get((view_type or "ACTIVE_ONLY").upper())
        if stages is None:
            raise InvalidRequest(f"Invalid view_type {view_type!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
        if not 1 <= max_results <= MAX_EXPERIMENT_RESULTS:
            raise InvalidRequest(f"max_results must be between 1 and {MAX_EXPERIMENT_RESULTS}")
        offset = decode_token(page_token, "exp")["o"] if page_token else 0
        stmt = select(experiments).where(experiments.c.lifecycle_stage.in_(stages))
        if filter_string and filter_string.strip():
            stmt = stmt.where(_name_filter(filter_string, self.engine.dialect.name))
        stmt = stmt.order_by(*_order_by(order_by)).offset(offset).limit(max_results + 1)
        with self.read() as conn:
            rows = conn.execute(stmt).all()
            more = len(rows) > max_results
            items = self._load_experiments(conn, rows[:max_results])
        token = encode_token({"k": "exp", "o": offset + max_results}) if more else None
        return Page(items, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        new_name = _name(new_name)
        self._require_active(experiment_id, "rename")
        try:
            with self.transaction() as conn:
                conn.execute(update(experiments).where(experiments.c.experiment_id == exp_id_int(experiment_id))
                             .values(name=new_name, last_update_time=now_ms()))
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{new_name}' already exists.") from None

    def delete_experiment(self, experiment_id: str) -> None:
        if exp_id_int(experiment_id) == int(DEFAULT_EXPERIMENT_ID):
            raise InvalidRequest("The Default experiment (id 0) cannot be deleted")
        self._set_stage(experiment_id, DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_stage(experiment_id, ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        if not key:
            raise InvalidRequest("Tag key must be a non-empty string")
        eid = self._require_active(experiment_id, "tag")
        with self.transaction() as conn:
            ins = dialect_insert(conn, experiment_tags).values(experiment_id=eid, key=key, value=value)
            conn.execute(ins.on_conflict_do_update(index_elements=["experiment_id", "key"],
                                                   set_={"value": ins.excluded.value}))
            conn.execute(update(experiments).where(experiments.c.experiment_id == eid)
                         .values(last_update_time=now_ms()))

    # -- helpers -----------------------------------------------------------
    def _require_active(self, experiment_id: str, action: str) -> int:
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != ACTIVE:
            raise InvalidRequest(f"Cannot {action} experiment '{experiment_id}': it is deleted")
        return int(experiment.experiment_id)

    def _set_stage(self, experiment_id: str, stage: str) -> None:
        eid = exp_id_int(experiment_id)
        with self.transaction() as conn:
            done = conn.execute(update(experiments).where(experiments.c.experiment_id == eid)
                                .values(lifecycle_stage=stage, last_update_time=now_ms()))
            if done.rowcount == 0:
                raise NotFound(f"No experiment with id '{experiment_id}'")

    def _load_experiments(self, conn: Connection, rows: list[Row[Any]]) -> list[Experiment]:
        ids = [r.experiment_id for r in rows]
        tags: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for t in conn.execute(select(experiment_tags).where(experiment_tags.c.experiment_id.in_(ids))):
                tags[t.experiment_id][t.key] = t.value
        return [
            Experiment(experiment_id=str(r.experiment_id), name=r.name,
                       artifact_location=r.artifact_location or join_uri(self.artifact_root, str(r.experiment_id)),
                       lifecycle_stage=r.lifecycle_stage, creation_time=r.creation_time,
                       last_update_time=r.last_update_time, tags=tags[r.experiment_id])
            for r in rows
        ]


def _name_filter(filter_string: str, dialect: str) -> Any:
    match = _NAME_FILTER.match(filter_string)
    if match is None:
        raise InvalidRequest(
            f"Unsupported experiment filter {filter_string!r}: use name = '...', name != '...', "
            "name LIKE '...' or name ILIKE '...'"
        )
    op = match.group(1).upper()
    value = match.group(2).replace("''", "'") if match.group(2) is not None else match.group(3).replace('""', '"')
    col = experiments.c.name
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "LIKE":
        # MLflow's LIKE is case-sensitive; SQLite's ignores ASCII case, its GLOB does not.
        return col.op("GLOB")(_like_to_glob(value)) if dialect == "sqlite" else col.like(value)
    return func.lower(col).like(value.lower())


def _like_to_glob(pattern: str) -> str:
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(ch, ch) for ch in pattern)


def _order_by(order_by: list[str] | None) -> list[Any]:
    clauses: list[Any] = []
    for item in order_by or []:
        parts = item.strip().split()
        if not parts or len(parts) > 2:
            raise InvalidRequest(f"Invalid order_by clause {item!r}")
        key = parts[0].removeprefix("attributes.")
        col = _ORDER_COLUMNS.get(key)
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if col is None or direction not in ("ASC", "DESC"):
            raise InvalidRequest(
                f"Invalid order_by clause {item!r}: use name, creation_time, last_update_time or "
                "experiment_id, optionally followed by ASC or DESC")
        clauses.append(col.desc() if direction == "DESC" else col.asc())
    if not clauses:
        clauses.append(experiments.c.creation_time.desc())
    clauses.append(experiments.c.experiment_id.asc())
    return clauses


__all__ = ["ACTIVE", "DELETED", "ExperimentsMixin"]
