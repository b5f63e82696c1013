"""Trace search compiled to SQL, on SQLite and PostgreSQL: every filter kind, ordering,
keyset paging (with ties, NULLs and rows arriving between pages), count and bad tokens."""
from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from tracelake.errors import BadFilter, InvalidRequest
from tracelake.store.sql import schema
from tracelake.store.sql.search import build_count, build_search


def tid(n: int) -> str:
    return f"tr-{n:032x}"


@dataclass
class T:
    """One trace and its child rows, as the ingest path would store them."""

    n: int
    t: int
    dur: int | None = None
    state: str = "OK"
    name: str | None = None
    exp: int = 1
    request_preview: str | None = None
    response_preview: str | None = None
    client_request_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    spans: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)  # name, type, status, in, out
    assessments: list[tuple[str, str, str | None, bool]] = field(default_factory=list)  # kind, name, JSON value, valid


def add(engine: Engine, *traces: T) -> None:
    with engine.begin() as conn:
        for tr in traces:
            trace_id = tid(tr.n)
            conn.execute(insert(schema.traces).values(
                trace_id=trace_id, trace_key=tr.n, experiment_id=tr.exp, request_time=tr.t, execution_duration=tr.dur,
                state=tr.state, name=tr.name, request_preview=tr.request_preview,
                response_preview=tr.response_preview, client_request_id=tr.client_request_id,
                session_id=tr.session_id, user_id=tr.user_id, span_count=len(tr.spans)))
            for k, v in tr.tags.items():
                conn.execute(insert(schema.trace_tags).values(trace_id=trace_id, key=k, value=v))
            for k, v in tr.metadata.items():
                conn.execute(insert(schema.trace_metadata).values(trace_id=trace_id, key=k, value=v))
            for i, (name, span_type, status, inputs, outputs) in enumerate(tr.spans):
                conn.execute(insert(schema.spans).values(
                    trace_key=tr.n, trace_id=trace_id, span_id=f"{i:016x}", name=name, span_type=span_type,
                    start_time_ns=i, status_code=status, inputs=inputs, outputs=outputs))
            for i, (kind, name, value, valid) in enumerate(tr.assessments):
                conn.execute(insert(schema.assessments).values(
                    assessment_id=f"a-{tr.n}-{i}", trace_id=trace_id, name=name, kind=kind, value=value,
                    source_type="HUMAN", create_time=0, last_update_time=0, valid=valid))


@pytest.fixture
def engine(store_uri: str) -> Iterator[Engine]:
    eng = create_engine(store_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    schema.metadata.create_all(eng)
    yield eng
    eng.dispose()


@dataclass
class Result:
    ids: list[str]
    token: str | None


def search(engine: Engine, filter_string: str | None = None, order_by: list[str] | None = None,
           max_results: int = 1000, page_token: str | None = None, experiments: tuple[str, ...] = ("1",)) -> Result:
    plan = build_search(list(experiments), filter_string, order_by, max_results, page_token)
    with engine.connect() as conn:
        rows = conn.execute(plan.select).all()
    return Result([r.trace_id for r in plan.page(rows)], plan.next_token(rows))


def count(engine: Engine, filter_string: str | None = None, experiments: tuple[str, ...] = ("1",)) -> int:
    with engine.connect() as conn:
        return conn.execute(build_count(list(experiments), filter_string)).scalar_one()


def page_through(engine: Engine, page_size: int, **kw: Any) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        res = search(engine, max_results=page_size, page_token=token, **kw)
        seen += res.ids
        if res.token is None:
            return seen
        token = res.token


# -- the fixed data set --------------------------------------------------------------

DATASET = [
    T(1, t=1000, dur=100, name="chat", client_request_id="req-1", session_id="s1", user_id="alice",
      request_preview='{"q": "Hello World"}', response_preview='"Hi there"',
      tags={"env": "prod", "my.key": "dotted"},
      metadata={"mlflow.trace.session": "s1", "mlflow.sourceRun": "run-1"},
      spans=[("chat", "CHAIN", "OK", '{"q": "Hello World"}', None),
             ("retrieve", "RETRIEVER", "OK", None, '["doc about Kittens"]')],
      assessments=[("feedback", "correct", "true", True), ("expectation", "answer", '"42"', True)]),
    T(2, t=2000, dur=250, state="ERROR", name="chat", user_id="bob", session_id="s2",
      request_preview="1000 items", response_preview="Foo failed", tags={"env": "dev"},
      spans=[("chat", "CHAIN", "ERROR", None, None), ("llm", "LLM", "ERROR", None, None)],
      assessments=[("feedback", "correct", "false", True), ("feedback", "score", "0.5", True),
                   ("feedback", "rating", '"yes"', True)]),
    T(3, t=3000, dur=None, state="IN_PROGRESS", name="Summarize", session_id="s1",
      metadata={"mlflow.trace.session": "s1"},
      spans=[("Summarize", "CHAIN", "UNSET", None, None)],
      assessments=[("feedback", "correct", '"true"', True), ("feedback", "correct", "false", False)]),
    T(4, t=3000, dur=50, name=None, request_preview="100% sure", tags={"env": "prod", "team": "search"},
      assessments=[("expectation", "answer", "42", True), ("feedback", "rating", '"yes"', True)]),
    T(5, t=1500, dur=20, name="chat", exp=2, tags={"env": "prod"}),
    T(6, t=500, dur=10, name="CHAT", tags={"env": "Prod"}, response_preview="Result [1] *ok?",
      spans=[("tool_call", "TOOL", "OK", '{"x": "kitten"}', None)]),
]


@pytest.fixture
def dataset(engine: Engine) -> Engine:
    add(engine, *DATASET)
    return engine


FILTERS: dict[str, list[tuple[str, list[int]]]] = {
    "no_filter": [
        ("", [1, 2, 3, 4, 6]),
    ],
    "state": [
        ("status = 'OK'", [1, 4, 6]),
        ("attributes.status != 'OK'", [2, 3]),
        ("trace.status IN ('ERROR', 'in_progress')", [2, 3]),
        ("status NOT IN ('OK')", [2, 3]),
    ],
    "numbers": [
        ("timestamp_ms > 1000", [2, 3, 4]),
        ("timestamp_ms >= 1000 AND timestamp_ms < 3000", [1, 2]),
        ("timestamp <= 1000", [1, 6]),
        ("timestamp_ms = 3000", [3, 4]),
        ("timestamp_ms > 999.5 AND timestamp_ms < 1000.5", [1]),
        ("execution_time_ms > 60", [1, 2]),
        ("execution_time_ms != 100", [2, 4, 6]),
        ("execution_time_ms IS NULL", [3]),
        ("execution_time_ms IS NOT NULL", [1, 2, 4, 6]),
        ("execution_time_ms IN (10, 50)", [4, 6]),
        ("end_time_ms >= 1100", [1, 2, 4]),
        ("trace.end_time < 1100", [6]),
    ],
    "strings": [
        # strings: = and LIKE are case-sensitive on both databases, ILIKE is not
        ("name = 'chat'", [1, 2]),
        ("name != 'chat'", [3, 6]),
        ("name IS NULL", [4]),
        ("name LIKE 'chat'", [1, 2]),
        ("name LIKE 'C%'", [6]),
        ("name LIKE 'ch_t'", [1, 2]),
        ("name ILIKE 'chat'", [1, 2, 6]),
        ("name ILIKE '%MARI%'", [3]),
        ("request_preview LIKE '100%'", [2, 4]),
        ("request_preview LIKE '100\\%%'", [4]),
        ("request_preview ILIKE '100\\% SURE'", [4]),
        ("span.name LIKE 'tool\\_%'", [6]),
        ("response_preview LIKE '%[1] *ok?'", [6]),  # GLOB's special characters are literal
        ("response_preview LIKE '%*%'", [6]),
        ("response_preview LIKE '%[r]%'", []),  # not a character class
        ("client_request_id = 'req-1'", [1]),
        ("session_id = 's1'", [1, 3]),
        ("user = 'bob'", [2]),
        (f"request_id = '{tid(4)}'", [4]),
    ],
    "tags_and_metadata": [
        # tags and metadata: "!=" and "NOT IN" need the key to be present
        ("tags.env = 'prod'", [1, 4]),
        ("tags.env != 'prod'", [2, 6]),
        ("tags.env IN ('dev', 'Prod')", [2, 6]),
        ("tags.env NOT IN ('prod')", [2, 6]),
        ("tags.env IS NULL", [3]),
        ("tags.env IS NOT NULL", [1, 2, 4, 6]),
        ("tags.env LIKE 'p%'", [1, 4]),
        ("tags.env ILIKE 'p%'", [1, 4, 6]),
        ("tags.`my.key` = 'dotted'", [1]),
        ("tags.env = 'prod' AND tags.team = 'search'", [4]),
        ("metadata.`mlflow.trace.session` = 's1'", [1, 3]),
        ("request_metadata.mlflow.trace.session = 's1'", [1, 3]),
        ("run_id = 'run-1'", [1]),
    ],
    "spans": [
        # spans: at least one span matches
        ("span.name = 'retrieve'", [1]),
        ("span.name LIKE 'tool%'", [6]),
        ("span.type = 'LLM'", [2]),
        ("span.status = 'ERROR'", [2]),
        ("span.status = 'STATUS_CODE_UNSET'", [3]),
        ("span.status != 'OK'", [2, 3]),
        ("span.type IN ('TOOL', 'RETRIEVER')", [1, 6]),
    ],
    "assessments": [
        # assessments: the literal matches the JSON text or the JSON string of its string form
        ("feedback.correct = true", [1, 3]),
        ("feedback.correct = 'true'", [1, 3]),
        ("feedback.correct = false", [2]),  # 3's false was overridden (valid = false)
        ("feedback.correct != true", [2]),
        ("feedback.correct IN (false, 'maybe')", [2]),
        ("feedback.rating = 'yes'", [2, 4]),
        ("feedback.score = 0.5", [2]),
        ("feedback.score = '0.5'", [2]),
        ("expectation.answer = 42", [1, 4]),
        ("feedback.answer = 42", []),
        ("feedback.correct IS NULL", [4, 6]),
        ("feedback.correct IS NOT NULL", [1, 2, 3]),
        ("feedback.rating LIKE '%ye%'", [2, 4]),
    ],
    "full_text": [
        # full text over previews and span names, inputs and outputs
        ("trace.text ILIKE '%kitten%'", [1, 6]),
        ("trace.text LIKE '%Kitten%'", [1]),
        ("trace.text ILIKE '%hello%'", [1]),
        ("trace.text ILIKE '%foo%'", [2]),
        ("trace.text ILIKE '%summarize%'", [3]),
    ],
    "boolean_structure": [
        ("status = 'ERROR' OR tags.team = 'search'", [2, 4]),
        ("(status = 'OK' OR status = 'ERROR') AND tags.env = 'prod'", [1, 4]),
        ("status = 'OK' OR status = 'ERROR' AND tags.env = 'prod'", [1, 4, 6]),
    ],
    "injection": [
        # user text is data, never SQL
        ("name = \"x' OR '1'='1\" OR name = '; DROP TABLE traces; --'", []),
    ],
}


@pytest.mark.parametrize("group", FILTERS)
def test_filters_match(dataset: Engine, group: str) -> None:
    wrong = {}
    for filter_string, numbers in FILTERS[group]:
        expected = [tid(n) for n in numbers]
        got = sorted(search(dataset, filter_string).ids)
        counted = count(dataset, filter_string)
        if got != expected or counted != len(expected):
            wrong[filter_string] = {"expected": expected, "got": got, "count": counted}
    assert wrong == {}


def test_filter_spans_all_given_experiments(dataset: Engine) -> None:
    assert sorted(search(dataset, "tags.env = 'prod'", experiments=("1", "2")).ids) == [tid(1), tid(4), tid(5)]
    assert count(dataset, experiments=("2", "1")) == 6
    assert search(dataset, experiments=("99",)).ids == []
    assert search(dataset, order_by=["experiment_id DESC"], experiments=("1", "2")).ids == [
        tid(n) for n in (5, 6, 4, 3, 2, 1)]


def test_user_values_are_bound_parameters_only() -> None:
    evil = "x'; DROP TABLE traces; --"
    plan = build_search(["1"], f"tags.`{evil}` = \"{evil}\" OR name LIKE \"{evil}\"", None, 10, None)
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        compiled = plan.select.compile(dialect=dialect)
        assert "DROP" not in str(compiled)
        assert evil in compiled.params.values()


# -- ordering ------------------------------------------------------------------------

ORDERINGS = [
    (None, [4, 3, 2, 1, 6]),  # timestamp_ms DESC, ties by trace_id DESC
    (["timestamp_ms ASC"], [6, 1, 2, 3, 4]),
    (["attributes.timestamp_ms DESC"], [4, 3, 2, 1, 6]),
    (["execution_time_ms DESC"], [2, 1, 4, 6, 3]),  # NULL (in progress) sorts as the smallest
    (["execution_time_ms"], [3, 6, 4, 1, 2]),
    (["name"], [4, 6, 3, 1, 2]),  # NULL name sorts as ''; byte order: 'CHAT' < 'Summarize' < 'chat'
    (["status DESC", "timestamp_ms ASC"], [6, 1, 4, 3, 2]),
    (["trace.request_time", "request_id DESC"], [6, 1, 2, 4, 3]),
    (["end_time DESC"], [4, 2, 1, 6, 3]),
]


def test_order_by(dataset: Engine) -> None:
    got = {repr(order_by): search(dataset, order_by=order_by).ids for order_by, _ in ORDERINGS}
    assert got == {repr(order_by): [tid(n) for n in expected] for order_by, expected in ORDERINGS}


def test_bad_order_by_is_rejected() -> None:
    with pytest.raises(BadFilter, match="Cannot order by tags.env"):
        build_search(["1"], None, ["tags.env"], 10, None)


# -- keyset paging -------------------------------------------------------------------

def tied_traces(count: int, seed: int) -> list[T]:
    """Traces with few distinct sort values, random ids and NULLs, in random insert order."""
    rng = random.Random(seed)
    numbers = rng.sample(range(1, 10_000), count)
    return [T(n, t=100 * (1 + i % 3), dur=[None, 5, 7][(i // 3) % 3],
              state=["OK", "ERROR", "IN_PROGRESS"][(i // 2) % 3], name=[None, "a", "b", "B"][i % 4])
            for i, n in enumerate(numbers)]


def expected_order(traces: list[T], order_by: list[tuple[str, bool]]) -> list[str]:
    """The order the search promises, computed in Python: NULL durations as -1, NULL names
    as '', ties broken by trace_id in the direction of the first key."""
    def value(tr: T, key: str) -> Any:
        return {"timestamp_ms": tr.t, "execution_time_ms": -1 if tr.dur is None else tr.dur,
                "end_time_ms": -1 if tr.dur is None else tr.t + tr.dur,
                "name": tr.name or "", "status": tr.state, "trace_id": tid(tr.n)}[key]

    ordered = sorted(traces, key=lambda tr: tid(tr.n), reverse=order_by[0][1])
    for key, descending in reversed(order_by):  # stable sorts, least significant key first
        ordered = sorted(ordered, key=lambda tr: value(tr, key), reverse=descending)
    return [tid(tr.n) for tr in ordered]


PAGED_ORDERINGS = [
    (None, [("timestamp_ms", True)]),
    (["timestamp_ms ASC"], [("timestamp_ms", False)]),
    (["execution_time_ms DESC"], [("execution_time_ms", True)]),
    (["end_time_ms"], [("end_time_ms", False)]),
    (["execution_time_ms ASC", "name DESC"], [("execution_time_ms", False), ("name", True)]),
    (["name", "timestamp_ms DESC"], [("name", False), ("timestamp_ms", True)]),
    (["status DESC", "execution_time_ms", "name"], [("status", True), ("execution_time_ms", False), ("name", False)]),
]


def test_paging_visits_every_row_once_in_order(engine: Engine) -> None:
    traces = tied_traces(23, seed=7)
    add(engine, *traces)
    for order_by, keys in PAGED_ORDERINGS:
        expected = expected_order(traces, keys)
        assert search(engine, order_by=order_by).ids == expected, order_by
        for page_size in (1, 4, 22, 23, 50):
            assert page_through(engine, page_size, order_by=order_by) == expected, (order_by, page_size)


def test_paging_with_a_filter(engine: Engine) -> None:
    traces = tied_traces(30, seed=3)
    add(engine, *traces)
    wanted = [tr for tr in traces if tr.state != "OK" and tr.name is not None]
    got = page_through(engine, 4, filter_string="status != 'OK' AND name IS NOT NULL", order_by=["name"])
    assert got == expected_order(wanted, [("name", False)])


def test_last_page_has_no_token(engine: Engine) -> None:
    add(engine, *tied_traces(4, seed=1))
    assert search(engine, max_results=4).token is None
    assert search(engine, max_results=3).token is not None
    assert search(engine, max_results=5).token is None


def test_paging_while_traces_arrive(engine: Engine) -> None:
    # Pairs share a timestamp; ids are 10 apart so a new row can sit just before or after one.
    originals = [T(10_000 + 10 * i, t=1000 + 10 * (i // 2)) for i in range(30)]
    add(engine, *originals)
    by_id = {tid(tr.n): tr for tr in originals}
    seen: list[str] = []
    expected_new: set[str] = set()
    token = None
    for page in range(100):
        res = search(engine, max_results=7, page_token=token)
        seen += res.ids
        if res.token is None:
            break
        token = res.token
        new = [T(900_000 + 10 * page, t=10_000),  # newest: before the cursor (DESC), never shown
               T(800_000 - 10 * page, t=100 - page)]  # oldest yet: after the cursor, shown later
        cursor = by_id.get(res.ids[-1])
        if cursor is not None:  # ties with the cursor row, on both sides of its trace_id
            new += [T(cursor.n + 1, t=cursor.t), T(cursor.n - 1, t=cursor.t)]
            expected_new.add(tid(cursor.n - 1))
        add(engine, *new)
        expected_new.add(tid(800_000 - 10 * page))
    assert len(seen) == len(set(seen)), "a trace was returned twice"
    assert set(by_id) <= set(seen), "an existing trace was skipped"
    assert set(seen) - set(by_id) == expected_new


def test_paging_survives_deleting_the_cursor_row(engine: Engine) -> None:
    traces = tied_traces(10, seed=5)
    add(engine, *traces)
    expected = expected_order(traces, [("timestamp_ms", True)])
    first = search(engine, max_results=4)
    with engine.begin() as conn:
        conn.execute(delete(schema.traces).where(schema.traces.c.trace_id == first.ids[-1]))
    rest = search(engine, max_results=100, page_token=first.token)
    assert first.ids + rest.ids == expected


def test_count_matches_the_pages(engine: Engine) -> None:
    add(engine, *tied_traces(17, seed=11))
    assert count(engine) == len(page_through(engine, 5)) == 17
    assert count(engine, "status = 'ERROR'") == len(page_through(engine, 2, filter_string="status = 'ERROR'"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.traces)).scalar_one() == 17


# -- bad page tokens and arguments ---------------------------------------------------

def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_token_from_another_query_is_rejected(dataset: Engine) -> None:
    token = search(dataset, "status = 'OK'", max_results=1).token
    assert token is not None
    assert search(dataset, "status = 'OK'", max_results=2, page_token=token).ids == [tid(1), tid(6)]
    for other in ({"filter_string": "status = 'ERROR'"}, {"order_by": ["timestamp_ms ASC"]},
                  {"experiments": ("1", "2")}):
        kw: dict[str, Any] = {"filter_string": "status = 'OK'", **other}
        with pytest.raises(InvalidRequest, match="belongs to a search with other experiment_ids"):
            search(dataset, max_results=1, page_token=token, **kw)


def test_default_order_by_shares_tokens_with_its_explicit_spelling(dataset: Engine) -> None:
    token = search(dataset, max_results=2).token
    assert search(dataset, order_by=["timestamp_ms DESC"], page_token=token).ids == [tid(2), tid(1), tid(6)]


@pytest.mark.parametrize("token", [
    "not a token!",
    "bm90IGpzb24",  # base64 of "not json"
    _token([1, 2]),
    _token({"v": 99, "q": "x", "k": []}),
    "\u00e9t\u00e9",
])
def test_malformed_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid page_token: it was not issued by this server"):
        build_search(["1"], None, None, 10, token)


def test_tampered_token_values_are_rejected(dataset: Engine) -> None:
    token = search(dataset, max_results=1).token
    assert token is not None
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for values in (["3000", tid(4)], [3000], [3000, tid(4), 1], [True, tid(4)], None):
        with pytest.raises(InvalidRequest, match="not issued by this server"):
            build_search(["1"], None, None, 10, _token({**data, "k": values}))


@pytest.mark.parametrize(("experiment_ids", "max_results", "message"), [
    ([], 10, "experiment_ids must name at least one experiment"),
    (["abc"], 10, "experiment_ids must be integers"),
    (["1_0"], 10, "experiment_ids must be integers"),
    (["1"], 0, "max_results must be a positive integer"),
    (["1"], True, "max_results must be a positive integer"),
])
def test_bad_arguments_are_rejected(experiment_ids: list[str], max_results: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        build_search(experiment_ids, None, None, max_results, None)


def test_bad_filter_is_rejected_by_search_and_count() -> None:
    with pytest.raises(BadFilter):
        build_search(["1"], "tags.env < 'a'", None, 10, None)
    with pytest.raises(BadFilter):
        build_count(["1"], "status = 'DONE'")
