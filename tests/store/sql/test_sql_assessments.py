"""Assessments: create/get/update/delete, ids, JSON values, overrides, NotFound messages."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from store_factories import batch, make_trace, new_trace_hex

from tracelake.entities import Assessment, AssessmentSource
from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.sql.schema import traces
from tracelake.store.sql.store import SqlStore


@pytest.fixture
def tid(store: SqlStore, exp: str) -> str:
    spans = make_trace()
    store.write_spans([batch(exp, spans)])
    return "tr-" + spans[0].trace_id


def seq(store: SqlStore, trace_id: str) -> int:
    with store.read() as conn:
        return conn.execute(select(traces.c.seq).where(traces.c.trace_id == trace_id)).scalar_one()


@pytest.mark.parametrize("value", [0.75, "yes", True, None, {"score": [1, 2, {"x": None}]}, [1, "a"]])
def test_create_and_get_any_json_value(store: SqlStore, tid: str, value: object) -> None:
    created = store.create_assessment(Assessment(
        "", tid, "quality", "feedback", value=value, rationale="because",
        source=AssessmentSource("LLM_JUDGE", "judge-1"), metadata={"run": "7"}))
    assert re.fullmatch(r"a-[0-9a-f]{32}", created.assessment_id)
    assert created.create_time > 0 and created.last_update_time == created.create_time
    got = store.get_assessment(tid, created.assessment_id)
    assert got == created
    assert store.get_trace_info(tid).assessments == [created]


def test_create_bumps_the_trace_seq(store: SqlStore, tid: str) -> None:
    before = seq(store, tid)
    store.create_assessment(Assessment("", tid, "q", "expectation", value="x"))
    assert seq(store, tid) > before


def test_given_id_is_kept_and_duplicates_rejected(store: SqlStore, tid: str) -> None:
    aid = "a-" + "1" * 32
    store.create_assessment(Assessment(aid, tid, "q", "feedback", value=1))
    with pytest.raises(AlreadyExists):
        store.create_assessment(Assessment(aid, tid, "q", "feedback", value=1))


def test_create_on_missing_trace_or_with_bad_fields(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="Trace"):
        store.create_assessment(Assessment("", new_trace_hex(), "q", "feedback", value=1))
    with pytest.raises(InvalidRequest, match="kind"):
        store.create_assessment(Assessment("", new_trace_hex(), "q", "opinion", value=1))
    with pytest.raises(InvalidRequest, match="name"):
        store.create_assessment(Assessment("", new_trace_hex(), "", "feedback", value=1))


def test_update_changes_fields_and_merges_metadata(store: SqlStore, tid: str) -> None:
    a = store.create_assessment(Assessment("", tid, "q", "feedback", value=1, metadata={"a": "1"}))
    before = seq(store, tid)
    updated = store.update_assessment(tid, a.assessment_id, {
        "name": "quality", "value": {"label": "good"}, "rationale": "r", "metadata": {"b": "2"}})
    assert (updated.name, updated.value, updated.rationale) == ("quality", {"label": "good"}, "r")
    assert updated.metadata == {"a": "1", "b": "2"}
    assert updated.last_update_time >= a.last_update_time and updated.create_time == a.create_time
    assert seq(store, tid) > before
    assert store.get_assessment(tid, a.assessment_id) == updated


def test_update_rejects_unknown_fields(store: SqlStore, tid: str) -> None:
    a = store.create_assessment(Assessment("", tid, "q", "feedback", value=1))
    with pytest.raises(InvalidRequest, match="kind"):
        store.update_assessment(tid, a.assessment_id, {"kind": "expectation"})


def test_not_found_messages(store: SqlStore, tid: str) -> None:
    with pytest.raises(NotFound, match=r"Assessment 'a-nope' not found on trace"):
        store.get_assessment(tid, "a-nope")
    with pytest.raises(NotFound, match=r"Trace 'tr-0+' not found"):
        store.get_assessment("0" * 32, "a-nope")
    with pytest.raises(NotFound):
        store.update_assessment(tid, "a-nope", {"value": 1})
    with pytest.raises(NotFound):
        store.delete_assessment(tid, "a-nope")


def test_assessment_of_another_trace_is_not_found(store: SqlStore, exp: str, tid: str) -> None:
    other = make_trace()
    store.write_spans([batch(exp, other)])
    a = store.create_assessment(Assessment("", tid, "q", "feedback", value=1))
    with pytest.raises(NotFound):
        store.get_assessment(other[0].trace_id, a.assessment_id)


def test_delete(store: SqlStore, tid: str) -> None:
    a = store.create_assessment(Assessment("", tid, "q", "feedback", value=1))
    store.delete_assessment(tid, a.assessment_id)
    assert store.get_trace_info(tid).assessments == []


def test_override_invalidates_the_original_until_deleted(store: SqlStore, tid: str) -> None:
    original = store.create_assessment(Assessment("", tid, "q", "feedback", value="bad",
                                                  source=AssessmentSource("LLM_JUDGE", "j")))
    override = store.create_assessment(Assessment("", tid, "q", "feedback", value="good",
                                                  overrides=original.assessment_id))
    assert store.get_assessment(tid, original.assessment_id).valid is False
    assert override.valid is True
    store.delete_assessment(tid, override.assessment_id)
    assert store.get_assessment(tid, original.assessment_id).valid is True
    with pytest.raises(NotFound, match="to override"):
        store.create_assessment(Assessment("", tid, "q", "feedback", value=1, overrides="a-missing"))
