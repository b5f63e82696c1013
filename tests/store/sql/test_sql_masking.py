"""Masking rules storage: per experiment and global."""
from __future__ import annotations

import pytest

from tracelake.errors import InvalidRequest, NotFound
from tracelake.store.sql.store import SqlStore


def test_add_list_delete(store: SqlStore, exp: str) -> None:
    other = store.create_experiment("other")
    g = store.add_masking_rule("regex", r"\b\d{16}\b", "[CARD]")
    mine = store.add_masking_rule("attribute_key", "api_key", experiment_id=exp)
    store.add_masking_rule("regex", "secret", experiment_id=other)
    rules = store.list_masking_rules(exp)
    assert [(r["rule_id"], r["experiment_id"], r["kind"], r["replacement"]) for r in rules] == [
        (g, None, "regex", "[CARD]"), (mine, exp, "attribute_key", "[MASKED]")]
    assert len(store.list_masking_rules()) == 3
    store.delete_masking_rule(mine)
    assert [r["rule_id"] for r in store.list_masking_rules(exp)] == [g]
    with pytest.raises(NotFound):
        store.delete_masking_rule(mine)


@pytest.mark.parametrize(("kind", "pattern"), [("regex", "(unclosed"), ("glob", "x"), ("regex", "")])
def test_invalid_rules(store: SqlStore, kind: str, pattern: str) -> None:
    with pytest.raises(InvalidRequest):
        store.add_masking_rule(kind, pattern)


def test_rule_for_missing_experiment(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.add_masking_rule("regex", "x", experiment_id="999")
