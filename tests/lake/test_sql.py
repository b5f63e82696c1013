"""Read-only SQL over the lake: what the parser refuses, the grant matrix, results."""
from __future__ import annotations

import pytest

from tests.lake.helpers import ingest, spans_of_trace
from tracelake.auth.grants import GrantStore
from tracelake.auth.model import Principal
from tracelake.auth.store import AuthStore
from tracelake.errors import InvalidRequest, NotFound, PermissionDenied
from tracelake.lake.catalog import Catalog, auth_grant_check
from tracelake.lake.sql import check_query, run_query

TRACES, SPANS, ASSESSMENTS = ("tracelake.monitoring.traces", "tracelake.monitoring.spans",
                              "tracelake.monitoring.assessments")


@pytest.fixture
def synced(store, exp, sync):
    ids = ingest(store, exp, [spans_of_trace(children=2) for _ in range(3)], tags={"team": "search"})
    sync.sync_once()
    return ids


@pytest.mark.parametrize(("sql", "error", "message"), [
    ("", InvalidRequest, "sql is required"),
    ("DELETE FROM traces", InvalidRequest, "not DELETE"),
    ("INSERT INTO traces SELECT * FROM traces", InvalidRequest, "not INSERT"),
    ("UPDATE traces SET state = 'OK'", InvalidRequest, "not UPDATE"),
    ("DROP TABLE traces", InvalidRequest, "not DROP"),
    ("CREATE TABLE x AS SELECT * FROM traces", InvalidRequest, "not CREATE"),
    ("COPY traces TO '/tmp/x.csv'", InvalidRequest, "only read-only queries"),
    ("ATTACH '/tmp/x.db' AS x", InvalidRequest, "only read-only queries"),
    ("SET enable_external_access = true", InvalidRequest, "only read-only queries"),
    ("PRAGMA version", InvalidRequest, "only read-only queries"),
    ("SELECT 1; SELECT 2", InvalidRequest, "exactly one statement"),
    ("SELECT * FROM read_csv('/etc/passwd')", InvalidRequest, "table functions are not allowed"),
    ("SELECT * FROM read_parquet('x.parquet')", InvalidRequest, "table functions are not allowed"),
    ("SELECT * FROM information_schema.tables", NotFound, "no lake table"),
    ("SELECT * FROM secrets", NotFound, "no lake table 'secrets'"),
    ("SELECT * FROM other.monitoring.traces", NotFound, "no catalog 'other'"),
    ("SELECT * FROM (", InvalidRequest, "cannot parse"),
])
def test_anything_but_a_query_on_lake_tables_is_refused(lake, sql, error, message) -> None:
    with pytest.raises(error, match=message):
        check_query(Catalog(lake), sql)


@pytest.mark.parametrize("name", ["traces", "monitoring.traces", "tracelake.monitoring.traces",
                                  "TRACELAKE.Monitoring.TRACES"])
def test_a_table_may_be_named_with_one_two_or_three_parts(lake, name) -> None:
    assert check_query(Catalog(lake), f"SELECT trace_id FROM {name}").tables == [TRACES]


def test_cte_names_are_not_tables(lake) -> None:
    checked = check_query(Catalog(lake), "WITH recent AS (SELECT * FROM traces) SELECT count(*) FROM recent")
    assert checked.tables == [TRACES]


def test_a_query_reads_joins_and_maps(store, lake, synced) -> None:
    result = run_query(Catalog(lake), """
        SELECT t.trace_id, t.tags['team'] AS team, count(*) AS spans, sum(s.input_tokens) AS tokens
        FROM traces t JOIN monitoring.spans s ON s.trace_id = t.trace_id
        WHERE t.state = 'OK' AND t.trace_id = ? GROUP BY ALL""".replace("?", f"'{synced[0]}'"))
    assert result.columns == ["trace_id", "team", "spans", "tokens"]
    assert result.rows == [[synced[0], "search", 3, 20]]
    assert result.tables == [TRACES, SPANS]


def test_results_are_capped_and_say_so(lake, synced) -> None:
    result = run_query(Catalog(lake), "SELECT span_id FROM spans", max_rows=4)
    assert (len(result.rows), result.truncated) == (4, True)
    assert run_query(Catalog(lake), "SELECT span_id FROM spans", max_rows=9).truncated is False


def test_maps_come_back_as_objects(lake, synced) -> None:
    result = run_query(Catalog(lake), "SELECT tags FROM traces LIMIT 1")
    assert result.rows == [[{"team": "search"}]]


def test_a_table_not_created_yet_reads_as_empty(lake) -> None:
    assert run_query(Catalog(lake), "SELECT count(*) FROM gateway.endpoint_usage").rows == [[0]]


def test_a_query_that_runs_too_long_is_stopped(lake, synced) -> None:
    slow = "SELECT count(*) FROM range(100000000000) a, traces"
    with pytest.raises(InvalidRequest, match="table functions"):  # range() is a table function too
        run_query(Catalog(lake), slow, timeout_s=0.2)
    cross = ("SELECT count(*) FROM spans a, spans b, spans c, spans d, spans e, spans f, spans g, spans h, "
             "spans i WHERE a.span_id || b.span_id || c.span_id || d.span_id || e.span_id || f.span_id || "
             "g.span_id || h.span_id || i.span_id LIKE '%zz%'")
    with pytest.raises(InvalidRequest, match="was stopped"):
        run_query(Catalog(lake), cross, timeout_s=0.2)


# -- grants -----------------------------------------------------------------------------------

@pytest.fixture
def principals(store) -> dict[str, Principal]:
    users = AuthStore(store.engine)
    grants = GrantStore(users)
    for name in ("alice", "bob", "carol"):
        users.create_user(name, "password-123")
    users.create_user("root", "password-123", is_admin=True)
    users.create_group("analysts")
    users.add_member("analysts", "bob")
    grants.set("user", "alice", "table", TRACES, "SELECT")
    grants.set("group", "analysts", "table", TRACES, "SELECT")
    grants.set("group", "analysts", "table", SPANS, "SELECT")
    out = {}
    for name in ("alice", "bob", "carol", "root"):
        u = users.require_user(name)
        out[name] = Principal(u.user_id, u.username, u.is_admin, users.group_ids(u.user_id), via="test")
    return out


@pytest.fixture
def grant_check(store):
    return auth_grant_check(GrantStore(AuthStore(store.engine)))


JOIN = "SELECT count(*) FROM traces t JOIN spans s USING (trace_id)"


@pytest.mark.parametrize(("who", "sql", "allowed"), [
    ("alice", "SELECT count(*) FROM traces", True),  # granted to her
    ("alice", JOIN, False),  # spans is not
    ("bob", "SELECT count(*) FROM traces", True),  # through his group
    ("bob", JOIN, True),
    ("bob", "SELECT count(*) FROM assessments", False),
    ("carol", "SELECT count(*) FROM traces", False),  # nothing granted
    ("root", JOIN + " JOIN assessments a USING (trace_id)", True),  # admin
])
def test_select_grants_decide(lake, synced, principals, grant_check, who, sql, allowed) -> None:
    if allowed:
        assert run_query(Catalog(lake), sql, principals[who], grant_check).rows
    else:
        with pytest.raises(PermissionDenied, match="SELECT permission on table"):
            run_query(Catalog(lake), sql, principals[who], grant_check)


def test_the_refusal_names_every_missing_table(lake, principals, grant_check) -> None:
    with pytest.raises(PermissionDenied) as info:
        check_query(Catalog(lake), "SELECT * FROM spans, assessments", principals["alice"], grant_check)
    assert SPANS in info.value.message and ASSESSMENTS in info.value.message
