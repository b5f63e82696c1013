"""Experiments: create, get, search (view types, filter, order, paging), rename, delete/restore, tags."""
from __future__ import annotations

import pytest

from tracelake.errors import AlreadyExists, InvalidRequest, NotFound
from tracelake.store.sql.store import SqlStore


def test_create_and_get(store: SqlStore) -> None:
    eid = store.create_experiment("alpha", tags={"team": "search"})
    got = store.get_experiment(eid)
    assert (got.name, got.lifecycle_stage, got.tags) == ("alpha", "active", {"team": "search"})
    assert got.artifact_location.endswith(f"/artifacts/{eid}")
    assert got.creation_time > 0 and got.last_update_time == got.creation_time
    assert store.get_experiment_by_name("alpha") == got


def test_explicit_artifact_location_is_kept(store: SqlStore) -> None:
    eid = store.create_experiment("beta", artifact_location="s3://bucket/beta")
    assert store.get_experiment(eid).artifact_location == "s3://bucket/beta"


def test_duplicate_name_is_already_exists(store: SqlStore) -> None:
    store.create_experiment("dup")
    with pytest.raises(AlreadyExists, match="dup"):
        store.create_experiment("dup")


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_name_is_invalid(store: SqlStore, bad: str) -> None:
    with pytest.raises(InvalidRequest):
        store.create_experiment(bad)


@pytest.mark.parametrize("eid", ["999", "abc", "-1"])
def test_missing_experiment_is_not_found(store: SqlStore, eid: str) -> None:
    with pytest.raises(NotFound, match="experiment"):
        store.get_experiment(eid)


def test_get_by_name_of_missing_is_none(store: SqlStore) -> None:
    assert store.get_experiment_by_name("nope") is None


def test_rename(store: SqlStore) -> None:
    eid = store.create_experiment("old")
    store.create_experiment("taken")
    store.rename_experiment(eid, "new")
    assert store.get_experiment(eid).name == "new"
    assert store.get_experiment_by_name("old") is None
    with pytest.raises(AlreadyExists):
        store.rename_experiment(eid, "taken")


def test_delete_restore_and_view_types(store: SqlStore) -> None:
    a = store.create_experiment("a")
    b = store.create_experiment("b")
    store.delete_experiment(b)
    assert store.get_experiment(b).lifecycle_stage == "deleted"
    names = lambda view: sorted(e.name for e in store.search_experiments(view_type=view).items)
    assert names("ACTIVE_ONLY") == ["Default", "a"]
    assert names("DELETED_ONLY") == ["b"]
    assert names("ALL") == ["Default", "a", "b"]
    store.restore_experiment(b)
    assert names("DELETED_ONLY") == []
    with pytest.raises(NotFound):
        store.delete_experiment("12345")
    assert a


def test_default_experiment_cannot_be_deleted(store: SqlStore) -> None:
    with pytest.raises(InvalidRequest, match="Default"):
        store.delete_experiment("0")


def test_deleted_experiment_cannot_be_renamed_or_tagged(store: SqlStore) -> None:
    eid = store.create_experiment("gone")
    store.delete_experiment(eid)
    with pytest.raises(InvalidRequest, match="deleted"):
        store.rename_experiment(eid, "x")
    with pytest.raises(InvalidRequest, match="deleted"):
        store.set_experiment_tag(eid, "k", "v")


def test_set_tag_overwrites(store: SqlStore) -> None:
    eid = store.create_experiment("tagged")
    store.set_experiment_tag(eid, "k", "1")
    store.set_experiment_tag(eid, "k", "2")
    store.set_experiment_tag(eid, "other", "x")
    assert store.get_experiment(eid).tags == {"k": "2", "other": "x"}


@pytest.mark.parametrize(("filter_string", "expected"), [
    ("name = 'prod-chat'", ["prod-chat"]),
    ("name != 'prod-chat'", ["Default", "Prod-RAG", "dev-chat"]),
    ("name LIKE 'prod-%'", ["prod-chat"]),
    ("name LIKE '%chat'", ["dev-chat", "prod-chat"]),
    ("name ILIKE 'prod-%'", ["Prod-RAG", "prod-chat"]),
    ("attributes.name LIKE '_ev-chat'", ["dev-chat"]),
    ('name = "dev-chat"', ["dev-chat"]),
])
def test_search_filter_on_name(store: SqlStore, filter_string: str, expected: list[str]) -> None:
    for name in ("prod-chat", "Prod-RAG", "dev-chat"):
        store.create_experiment(name)
    page = store.search_experiments(filter_string=filter_string)
    assert sorted(e.name for e in page.items) == expected


@pytest.mark.parametrize("bad", ["tags.x = 'y'", "name = ", "name LIKE x", "creation_time > 5"])
def test_unsupported_filters_are_invalid(store: SqlStore, bad: str) -> None:
    with pytest.raises(InvalidRequest):
        store.search_experiments(filter_string=bad)


def test_search_order_and_paging(store: SqlStore) -> None:
    for name in ("c", "a", "d", "b"):
        store.create_experiment(name)
    seen: list[str] = []
    token = None
    while True:
        page = store.search_experiments(max_results=2, order_by=["name DESC"], page_token=token)
        seen += [e.name for e in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["d", "c", "b", "a", "Default"]
    by_time = [e.name for e in store.search_experiments(order_by=["creation_time ASC"]).items]
    assert by_time[0] == "Default"


@pytest.mark.parametrize("order", [["size"], ["name sideways"], ["name ASC extra"]])
def test_bad_order_by_is_invalid(store: SqlStore, order: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        store.search_experiments(order_by=order)


def test_bad_view_type_and_token_are_invalid(store: SqlStore) -> None:
    with pytest.raises(InvalidRequest):
        store.search_experiments(view_type="SOME")
    with pytest.raises(InvalidRequest):
        store.search_experiments(page_token="garbage!")
