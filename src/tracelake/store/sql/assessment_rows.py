"""``assessments`` rows <-> ``Assessment`` (value, metadata and error are JSON text)."""
from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Row

from tracelake.entities import Assessment, AssessmentSource


def dumps_json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def assessment_to_row(a: Assessment) -> dict[str, Any]:
    return {
        "assessment_id": a.assessment_id,
        "trace_id": a.trace_id,
        "span_id": a.span_id,
        "name": a.name,
        "kind": a.kind,
        "value": dumps_json(a.value),
        "rationale": a.rationale,
        "source_type": a.source.source_type,
        "source_id": a.source.source_id or "",
        "create_time": a.create_time,
        "last_update_time": a.last_update_time,
        "metadata": dumps_json(a.metadata) if a.metadata else None,
        "error": dumps_json(a.error) if a.error is not None else None,
        "overrides": a.overrides,
        "valid": a.valid,
    }


def assessment_from_row(row: Row[Any]) -> Assessment:
    return Assessment(
        assessment_id=row.assessment_id,
        trace_id=row.trace_id,
        name=row.name,
        kind=row.kind,
        value=orjson.loads(row.value) if row.value is not None else None,
        rationale=row.rationale,
        source=AssessmentSource(row.source_type, row.source_id),
        span_id=row.span_id,
        create_time=row.create_time,
        last_update_time=row.last_update_time,
        metadata=orjson.loads(row._mapping["metadata"]) if row._mapping["metadata"] else {},
        error=orjson.loads(row.error) if row.error else None,
        overrides=row.overrides,
        valid=bool(row.valid),
    )
