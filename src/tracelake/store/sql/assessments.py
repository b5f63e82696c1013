"""Assessments (feedback and expectations) on traces. Each change bumps the trace's ``seq``.

An assessment created with ``overrides=<id>`` marks that one invalid; deleting the override
makes it valid again (MLflow's behaviour).
"""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tracelake.entities import Assessment
from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.sql.assessment_rows import (
    assessment_from_row,
    assessment_to_row,
    dumps_json,
)
from tracelake.store.sql.core import StoreCore, norm_trace_id, now_ms
from tracelake.store.sql.schema import assessments, traces

KINDS = ("feedback", "expectation")
UPDATABLE = ("name", "value", "rationale", "metadata")
ASSESSMENT_ID_PREFIX = "a-"


def new_assessment_id() -> str:
    return ASSESSMENT_ID_PREFIX + uuid.uuid4().hex


def touch_trace(conn: Connection, trace_id: str, seq: int) -> None:
    """Give the trace a new change sequence value; ``NotFound`` when there is no such trace."""
    if conn.execute(update(traces).where(traces.c.trace_id == trace_id).values(seq=seq)).rowcount == 0:
        raise NotFound(f"Trace '{trace_id}' not found")


class AssessmentsMixin(StoreCore):
    def create_assessment(self, assessment: Assessment) -> Assessment:
        tid = norm_trace_id(assessment.trace_id)
        if not assessment.name:
            raise InvalidRequest("Assessment name must be a non-empty string")
        if assessment.kind not in KINDS:
            raise InvalidRequest(f"Invalid assessment kind {assessment.kind!r}: expected feedback or expectation")
        now = now_ms()
        created = dataclasses.replace(
            assessment, trace_id=tid, assessment_id=assessment.assessment_id or new_assessment_id(),
            create_time=assessment.create_time or now,
            last_update_time=assessment.last_update_time or assessment.create_time or now,
        )
        try:
            with self.write() as tx:
                touch_trace(tx.conn, tid, tx.seq)
                if created.overrides:
                    done = tx.conn.execute(update(assessments).where(
                        assessments.c.assessment_id == created.overrides, assessments.c.trace_id == tid)
                        .values(valid=False))
                    if done.rowcount == 0:
                        raise NotFound(f"Assessment '{created.overrides}' (to override) not found on trace '{tid}'")
                tx.conn.execute(insert(assessments).values(**assessment_to_row(created)))
        except IntegrityError:
            raise AlreadyExists(f"Assessment '{created.assessment_id}' already exists") from None
        return created

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        tid = norm_trace_id(trace_id)
        with self.read() as conn:
            return _load(conn, tid, assessment_id)

    def update_assessment(self, trace_id: str, assessment_id: str, changes: dict[str, Any]) -> Assessment:
        tid = norm_trace_id(trace_id)
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise InvalidRequest(f"Cannot update assessment field(s) {', '.join(unknown)}: "
                                 f"only {', '.join(UPDATABLE)} can change")
        if "name" in changes and not changes["name"]:
            raise InvalidRequest("Assessment name must be a non-empty string")
        with self.write() as tx:
            current = _load(tx.conn, tid, assessment_id)
            values: dict[str, Any] = {"last_update_time": max(now_ms(), current.last_update_time)}
            if "name" in changes:
                values["name"] = changes["name"]
            if "value" in changes:
                values["value"] = dumps_json(changes["value"])
            if "rationale" in changes:
                values["rationale"] = changes["rationale"]
            if "metadata" in changes:
                # Metadata keys are merged into the existing ones (MLflow's behaviour).
                merged = {**current.metadata, **(changes["metadata"] or {})}
                values["metadata"] = dumps_json(merged) if merged else None
            tx.conn.execute(update(assessments).where(assessments.c.assessment_id == assessment_id)
                            .values(**values))
            touch_trace(tx.conn, tid, tx.seq)
            return _load(tx.conn, tid, assessment_id)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        tid = norm_trace_id(trace_id)
        with self.write() as tx:
            current = _load(tx.conn, tid, assessment_id)
            tx.conn.execute(delete(assessments).where(assessments.c.assessment_id == assessment_id))
            if current.overrides:
                tx.conn.execute(update(assessments).where(assessments.c.assessment_id == current.overrides,
                                                          assessments.c.trace_id == tid).values(valid=True))
            touch_trace(tx.conn, tid, tx.seq)


def _load(conn: Connection, trace_id: str, assessment_id: str) -> Assessment:
    row = conn.execute(select(assessments).where(assessments.c.assessment_id == assessment_id,
                                                 assessments.c.trace_id == trace_id)).first()
    if row is None:
        exists = conn.execute(select(traces.c.trace_id).where(traces.c.trace_id == trace_id)).first()
        if exists is None:
            raise NotFound(f"Trace '{trace_id}' not found")
        raise NotFound(f"Assessment '{assessment_id}' not found on trace '{trace_id}'")
    return assessment_from_row(row)
