"""The real ``mlflow`` client (3.17.2) against a live tracelake server, on SQLite and PostgreSQL.

Every test points the process-wide client at its own server (``mlflow_client`` fixture) with
synchronous export, except where the default asynchronous mode is the point.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import mlflow
import pytest
from mlflow.entities import AssessmentSource, AssessmentSourceType, Expectation, Feedback
from mlflow.exceptions import MlflowException

from tests.compat.conftest import MlflowSession, SentTraces
from tests.compat.mlflow_app import TOKEN_USAGE, assert_same_spans, root_fn, run_other, spans_by_name


def _names(traces) -> set[str]:
    return {t.info.tags.get("mlflow.traceName") for t in traces}


# -- experiments ---------------------------------------------------------------------------------

def test_set_experiment_creates_then_reuses(mlflow_client: MlflowSession) -> None:
    created = mlflow.set_experiment("tl-compat")
    assert created.name == "tl-compat"
    assert created.lifecycle_stage == "active"
    reused = mlflow.set_experiment("tl-compat")
    assert reused.experiment_id == created.experiment_id
    assert mlflow_client.client().get_experiment_by_name("tl-compat").experiment_id == created.experiment_id
    assert mlflow_client.client().get_experiment_by_name("absent") is None
    by_id = mlflow.set_experiment(experiment_id=created.experiment_id)
    assert by_id.name == "tl-compat"


# -- tracing and reading back ----------------------------------------------------------------------

def test_nested_spans_read_back_equal_to_what_was_sent(mlflow_client: MlflowSession,
                                                       sent_traces: SentTraces) -> None:
    mlflow.set_experiment("tl-spans")
    assert root_fn("hello", 2) == {"answer": "HELLO"}
    trace_id = mlflow.get_last_active_trace_id()
    sent = sent_traces.by_id[trace_id]

    got = mlflow.get_trace(trace_id)
    assert got is not None
    assert_same_spans(sent, got)
    spans = spans_by_name(got)
    assert {name: s["span_type"] for name, s in spans.items()} == {
        "root_fn": "AGENT", "retrieve": "RETRIEVER", "llm": "CHAT_MODEL", "parse": "PARSER",
        "failing_tool": "TOOL"}
    root_id = spans["root_fn"]["span_id"]
    assert spans["root_fn"]["parent_id"] is None
    assert {s["parent_id"] for name, s in spans.items() if name != "root_fn"} == {root_id}
    assert spans["root_fn"]["inputs"] == {"question": "hello", "n": 2}
    assert spans["root_fn"]["attributes"]["team"] == "search"
    assert spans["root_fn"]["attributes"]["k"] == 3
    assert spans["llm"]["attributes"]["mlflow.chat.tokenUsage"] == TOKEN_USAGE
    assert spans["llm"]["attributes"]["stop"] == ["\n", "END"]
    assert spans["parse"]["inputs"] == "plain text input"
    assert spans["parse"]["outputs"] == ["a", 1, None, True, 2.5]


def test_exception_is_an_error_span_with_an_event(mlflow_client: MlflowSession, sent_traces: SentTraces) -> None:
    mlflow.set_experiment("tl-errors")
    root_fn("hello", 2)
    trace_id = mlflow.get_last_active_trace_id()
    tool = spans_by_name(mlflow.get_trace(trace_id))["failing_tool"]
    assert tool["status"] == ("ERROR", "ValueError: boom 2")
    (event,) = tool["events"]
    assert event[0] == "exception"
    assert event[2]["exception.type"] == "ValueError"
    assert event[2]["exception.message"] == "boom 2"
    assert "Traceback" in event[2]["exception.stacktrace"]

    run_other(5)
    other = sent_traces.last()
    got = mlflow.get_trace(other.info.trace_id)
    assert got.info.state == "ERROR"
    assert_same_spans(other, got)


def test_trace_info_carries_tags_metadata_and_client_request_id(mlflow_client: MlflowSession,
                                                                sent_traces: SentTraces) -> None:
    mlflow.set_experiment("tl-info")
    root_fn("hello", 2)
    sent = sent_traces.last().info
    got = mlflow.get_trace(sent.trace_id).info
    assert got.trace_id == sent.trace_id
    assert got.client_request_id == "req-123"
    assert got.state == "OK"
    assert got.request_time == sent.request_time
    assert got.execution_duration == sent.execution_duration
    # Once the root span is stored the server derives previews from it (compact JSON): same value.
    assert json.loads(got.request_preview) == json.loads(sent.request_preview)
    assert json.loads(got.response_preview) == json.loads(sent.response_preview)
    for key in ("env", "user", "mlflow.traceName"):
        assert got.tags[key] == sent.tags[key]
    for key in ("custom.meta", "mlflow.trace.session", "mlflow.trace.user", "mlflow.traceInputs",
                "mlflow.traceOutputs", "mlflow.source.name"):
        assert got.trace_metadata[key] == sent.trace_metadata[key], key
    assert got.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"


def test_default_async_mode_logs_whole_traces(mlflow_async_client: MlflowSession,
                                              sent_traces: SentTraces) -> None:
    mlflow.set_experiment("tl-async")
    for i in range(3):
        root_fn(f"question {i}", i)
    run_other(1)
    mlflow.flush_trace_async_logging()
    assert len(sent_traces.by_id) == 4
    for trace_id, sent in sent_traces.by_id.items():
        got = mlflow.get_trace(trace_id)
        assert got is not None, trace_id
        assert got.info.state == sent.info.state
        assert_same_spans(sent, got)


def test_large_unicode_streamed_and_custom_typed_values_round_trip(mlflow_client: MlflowSession,
                                                                   sent_traces: SentTraces) -> None:
    """Inputs over the server's offload threshold (64 KiB), non-ASCII text, a generator's chunks
    and a span type of the app's own."""
    mlflow.set_experiment("tl-values")
    big = {"document": "x" * 100_000, "note": "naïve café — 東京 🚀"}

    @mlflow.trace(span_type="MY_STEP")
    def stream(doc: dict) -> Iterator[str]:
        yield from ("chunk-1 ", "chunk-2 ", "ünïcödé")

    @mlflow.trace(span_type="CHAIN")
    def outer(doc: dict) -> str:
        return "".join(stream(doc))

    assert outer(big) == "chunk-1 chunk-2 ünïcödé"
    sent = sent_traces.last()
    got = mlflow.get_trace(sent.info.trace_id)
    assert_same_spans(sent, got)
    spans = spans_by_name(got)
    assert spans["outer"]["inputs"] == {"doc": big}
    assert spans["stream"]["span_type"] == "MY_STEP"
    assert spans["stream"]["outputs"] == ["chunk-1 ", "chunk-2 ", "ünïcödé"]
    found = mlflow.search_traces(locations=[sent.info.experiment_id], filter_string="span.type = 'MY_STEP'",
                                 return_type="list")
    assert [t.info.trace_id for t in found] == [sent.info.trace_id]


def test_get_trace_of_an_unknown_id(mlflow_client: MlflowSession) -> None:
    missing = "tr-" + "ab" * 16
    assert mlflow.get_trace(missing) is None
    with pytest.raises(MlflowException) as err:
        mlflow_client.client().get_trace(missing)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# -- search -------------------------------------------------------------------------------------

@pytest.fixture
def two_traces(mlflow_client: MlflowSession) -> dict[str, str]:
    """root_fn (OK, tags env=test) and other (ERROR, env=prod), with one feedback and one expectation."""
    experiment = mlflow.set_experiment("tl-search")
    root_fn("hello", 2)
    root_id = mlflow.get_last_active_trace_id()
    run_other(1)
    other_id = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=root_id, name="quality", value="great",
                        source=AssessmentSource(AssessmentSourceType.HUMAN, "bob"))
    mlflow.log_feedback(trace_id=other_id, name="quality", value="poor")
    mlflow.log_expectation(trace_id=root_id, name="expected_answer", value="HELLO")
    return {"experiment_id": experiment.experiment_id, "root_fn": root_id, "other": other_id}


# Every kind of clause the grammar answers, with the traces it must return (by name).
FILTERS = [
    ("tags.env = 'test'", {"root_fn"}),
    ("tag.user = 'alice'", {"root_fn"}),
    ("tags.env != 'prod'", {"root_fn"}),
    ("tags.env LIKE 'te%'", {"root_fn"}),
    ("tags.env ILIKE 'TE%'", {"root_fn"}),
    ("tags.env IN ('test', 'prod')", {"root_fn", "other"}),
    ("tags.env NOT IN ('test')", {"other"}),
    ("tags.user IS NULL", {"other"}),
    ("tags.user IS NOT NULL", {"root_fn"}),
    ("tags.`mlflow.traceName` = 'other'", {"other"}),
    ("metadata.`custom.meta` = 'm1'", {"root_fn"}),
    ("request_metadata.`mlflow.trace.session` = 's-1'", {"root_fn"}),
    ("trace.status = 'OK'", {"root_fn"}),
    ("attributes.status = 'ERROR'", {"other"}),
    ("status != 'OK'", {"other"}),
    ("trace.status IN ('OK', 'ERROR')", {"root_fn", "other"}),
    ("trace.timestamp_ms > 0", {"root_fn", "other"}),
    ("timestamp > 0", {"root_fn", "other"}),
    ("trace.execution_time_ms >= 0", {"root_fn", "other"}),
    ("execution_time_ms > 100000000", set()),
    ("trace.end_time_ms > 0", {"root_fn", "other"}),
    ("state = 'OK'", {"root_fn"}),
    ("trace.request_preview LIKE '%hello%'", {"root_fn"}),
    ("metadata.mlflow.trace.session = 's-1'", {"root_fn"}),
    ('metadata."custom.meta" = \'m1\'', {"root_fn"}),
    ("trace.name = 'root_fn'", {"root_fn"}),
    ("trace.name LIKE 'oth%'", {"other"}),
    ("trace.client_request_id = 'req-123'", {"root_fn"}),
    ("trace.session_id = 's-1'", {"root_fn"}),
    ("trace.user = 'u-alice'", {"root_fn"}),
    ("trace.user_id = 'u-alice'", {"root_fn"}),
    ("trace.run_id = 'nope'", set()),
    ("span.name = 'retrieve'", {"root_fn"}),
    ("span.type = 'RETRIEVER'", {"root_fn"}),
    ("span.span_type = 'CHAIN'", {"other"}),
    ("span.status = 'ERROR'", {"root_fn", "other"}),
    ("trace.text ILIKE '%hello%'", {"root_fn"}),
    ("trace.text LIKE '%about hello%'", {"root_fn"}),
    ("feedback.quality = 'great'", {"root_fn"}),
    ("feedback.quality IN ('great', 'poor')", {"root_fn", "other"}),
    ("expectation.expected_answer = 'HELLO'", {"root_fn"}),
    ("tags.env = 'test' AND trace.status = 'OK'", {"root_fn"}),
    ("tags.env = 'test' AND trace.status = 'ERROR'", set()),
    ("tags.env = 'test' OR trace.status = 'ERROR'", {"root_fn", "other"}),
    ("(tags.env = 'prod' OR tags.user = 'alice') AND span.type = 'TOOL'", {"root_fn"}),
]


def test_search_filters(two_traces: dict[str, str]) -> None:
    failures = []
    for filter_string, expected in FILTERS:
        found = mlflow.search_traces(locations=[two_traces["experiment_id"]], filter_string=filter_string,
                                     return_type="list", include_spans=False)
        if _names(found) != expected:
            failures.append(f"{filter_string!r}: expected {sorted(expected)}, got {sorted(_names(found))}")
    assert not failures, "\n".join(failures)


def test_search_id_filters(two_traces: dict[str, str]) -> None:
    root_id, experiment_id = two_traces["root_fn"], two_traces["experiment_id"]
    for filter_string, expected in [(f"trace.request_id = '{root_id}'", [root_id]),
                                    (f"trace.trace_id != '{root_id}'", [two_traces["other"]]),
                                    (f"trace.experiment_id = {experiment_id}", [two_traces["other"], root_id])]:
        found = mlflow.search_traces(locations=[experiment_id], return_type="list", filter_string=filter_string)
        assert [t.info.trace_id for t in found] == expected, filter_string


def test_search_dataframe_has_spans_and_assessments(two_traces: dict[str, str]) -> None:
    df = mlflow.search_traces(locations=[two_traces["experiment_id"]])
    assert set(df["trace_id"]) == {two_traces["root_fn"], two_traces["other"]}
    row = df[df["trace_id"] == two_traces["root_fn"]].iloc[0]
    assert row["state"] == "OK"
    assert row["client_request_id"] == "req-123"
    assert row["request"] == {"question": "hello", "n": 2}
    assert row["response"] == {"answer": "HELLO"}
    assert row["tags"]["env"] == "test"
    assert row["trace_metadata"]["custom.meta"] == "m1"
    assert {s["name"] for s in row["spans"]} == {"root_fn", "retrieve", "llm", "parse", "failing_tool"}
    assert sorted(a["assessment_name"] for a in row["assessments"]) == ["expected_answer", "quality"]


def test_search_list_matches_get_trace(two_traces: dict[str, str]) -> None:
    found = mlflow.search_traces(locations=[two_traces["experiment_id"]], return_type="list")
    assert len(found) == 2
    for trace in found:
        got = mlflow.get_trace(trace.info.trace_id)
        assert spans_by_name(trace) == spans_by_name(got)


def test_bad_filter_is_a_client_error(two_traces: dict[str, str]) -> None:
    with pytest.raises(MlflowException) as err:
        mlflow.search_traces(locations=[two_traces["experiment_id"]], filter_string="foo.bar = 'x'")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_order_by(two_traces: dict[str, str]) -> None:
    exp = [two_traces["experiment_id"]]

    def order(order_by: list[str] | None) -> list[str]:
        return [t.info.tags["mlflow.traceName"]
                for t in mlflow.search_traces(locations=exp, order_by=order_by, return_type="list",
                                              include_spans=False)]

    # root_fn ran first: newest-first is the default.
    assert order(None) == ["other", "root_fn"]
    assert order(["timestamp_ms DESC"]) == ["other", "root_fn"]
    assert order(["trace.timestamp_ms ASC"]) == ["root_fn", "other"]
    assert order(["name"]) == ["other", "root_fn"]
    assert order(["name DESC"]) == ["root_fn", "other"]
    assert order(["status ASC", "timestamp_ms ASC"]) == ["other", "root_fn"]  # "ERROR" < "OK"
    assert order(["end_time ASC"]) == ["root_fn", "other"]
    assert order(["request_id"]) == sorted(["root_fn", "other"],
                                           key=lambda name: two_traces[name])
    times = order(["execution_time ASC"])
    assert sorted(times) == ["other", "root_fn"]


def test_search_pages_past_one_page(mlflow_async_client: MlflowSession) -> None:
    experiment = mlflow.set_experiment("tl-paging")

    @mlflow.trace
    def step(i: int) -> int:
        return i

    for i in range(105):
        step(i)
    mlflow.flush_trace_async_logging()
    found = mlflow.search_traces(locations=[experiment.experiment_id], return_type="list",
                                 order_by=["timestamp_ms ASC"])
    assert len(found) == 105  # mlflow.search_traces pages by 100
    assert len({t.info.trace_id for t in found}) == 105
    assert sorted(t.data.spans[0].inputs["i"] for t in found) == list(range(105))
    times = [t.info.request_time for t in found]
    assert times == sorted(times)
    assert len(mlflow.search_traces(locations=[experiment.experiment_id], max_results=42)) == 42

    client = mlflow_async_client.client()
    seen: list[str] = []
    token = None
    while True:
        page = client.search_traces(locations=[experiment.experiment_id], max_results=40, page_token=token,
                                    include_spans=False, order_by=["timestamp_ms ASC"])
        seen += [t.info.trace_id for t in page]
        token = page.token
        if not token:
            break
    assert seen == [t.info.trace_id for t in found]


# -- tags, assessments, deletion -------------------------------------------------------------------

def test_set_and_delete_trace_tag(mlflow_client: MlflowSession) -> None:
    mlflow.set_experiment("tl-tags")
    root_fn("hello", 1)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.set_trace_tag(trace_id, "stage", "review")
    assert mlflow.get_trace(trace_id).info.tags["stage"] == "review"
    mlflow.set_trace_tag(trace_id, "stage", "done")
    assert mlflow.get_trace(trace_id).info.tags["stage"] == "done"
    mlflow.delete_trace_tag(trace_id, "stage")
    assert "stage" not in mlflow.get_trace(trace_id).info.tags
    with pytest.raises(MlflowException) as err:
        mlflow.delete_trace_tag(trace_id, "stage")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_feedback_and_expectations(mlflow_client: MlflowSession) -> None:
    mlflow.set_experiment("tl-assessments")
    root_fn("hello", 1)
    trace_id = mlflow.get_last_active_trace_id()

    human = mlflow.log_feedback(trace_id=trace_id, name="quality", value="good", rationale="fine",
                                metadata={"m": "1"}, source=AssessmentSource(AssessmentSourceType.HUMAN, "bob"))
    judge = mlflow.log_feedback(trace_id=trace_id, name="relevance", value=0.75,
                                source=AssessmentSource(AssessmentSourceType.LLM_JUDGE, "gpt"))
    failed = mlflow.log_feedback(trace_id=trace_id, name="safety", error=ValueError("judge failed"))
    text = mlflow.log_expectation(trace_id=trace_id, name="expected_answer", value="HELLO")
    structured = mlflow.log_expectation(trace_id=trace_id, name="facts", value={"facts": ["a", 1]})
    for created in (human, judge, failed, text, structured):
        assert created.assessment_id.startswith("a-")

    by_name = {a.name: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert set(by_name) == {"quality", "relevance", "safety", "expected_answer", "facts"}
    assert by_name["quality"].value == "good"
    assert by_name["quality"].rationale == "fine"
    assert by_name["quality"].metadata == {"m": "1"}
    assert by_name["quality"].source.source_type == "HUMAN"
    assert by_name["quality"].source.source_id == "bob"
    assert by_name["relevance"].value == 0.75
    assert by_name["relevance"].source.source_type == "LLM_JUDGE"
    assert by_name["safety"].value is None
    assert by_name["safety"].error.error_code == "ValueError"
    assert by_name["safety"].error.error_message == "judge failed"
    assert by_name["expected_answer"].value == "HELLO"
    assert by_name["facts"].value == {"facts": ["a", 1]}

    fetched = mlflow.get_assessment(trace_id, human.assessment_id)
    assert fetched.value == "good"

    updated = mlflow.update_assessment(trace_id, human.assessment_id,
                                       Feedback(name="quality", value="great", rationale="better"))
    assert updated.value == "great"
    assert updated.rationale == "better"
    assert updated.source.source_id == "bob"  # unmasked fields are kept
    assert updated.metadata == {"m": "1"}
    assert updated.create_time_ms == human.create_time_ms
    assert updated.last_update_time_ms >= human.last_update_time_ms
    exp_updated = mlflow.update_assessment(trace_id, text.assessment_id,
                                           Expectation(name="expected_answer", value="HELLO!"))
    assert exp_updated.value == "HELLO!"
    by_name = {a.name: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert by_name["quality"].value == "great"
    assert by_name["expected_answer"].value == "HELLO!"

    mlflow.delete_assessment(trace_id, judge.assessment_id)
    names = {a.name for a in mlflow.get_trace(trace_id).info.assessments}
    assert names == {"quality", "safety", "expected_answer", "facts"}


def test_span_feedback_and_override(mlflow_client: MlflowSession) -> None:
    mlflow.set_experiment("tl-overrides")
    root_fn("hello", 1)
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    trace_id = trace.info.trace_id
    llm_span_id = next(s.span_id for s in trace.data.spans if s.name == "llm")

    judged = mlflow.log_feedback(trace_id=trace_id, name="relevance", value=0.4, span_id=llm_span_id,
                                 source=AssessmentSource(AssessmentSourceType.LLM_JUDGE, "gpt"))
    assert judged.span_id == llm_span_id
    corrected = mlflow.override_feedback(trace_id=trace_id, assessment_id=judged.assessment_id, value=0.9,
                                         rationale="judge was too strict",
                                         source=AssessmentSource(AssessmentSourceType.HUMAN, "bob"))
    assert corrected.overrides == judged.assessment_id
    by_id = {a.assessment_id: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert by_id[corrected.assessment_id].value == 0.9
    assert by_id[corrected.assessment_id].span_id == llm_span_id
    assert by_id[corrected.assessment_id].overrides == judged.assessment_id
    assert by_id[corrected.assessment_id].valid is True
    assert by_id[judged.assessment_id].valid is False

    mlflow.delete_assessment(trace_id, corrected.assessment_id)  # the overridden one counts again
    (restored,) = mlflow.get_trace(trace_id).info.assessments
    assert restored.assessment_id == judged.assessment_id
    assert restored.valid is True


def test_delete_traces_by_id_and_by_age(mlflow_client: MlflowSession) -> None:
    experiment = mlflow.set_experiment("tl-delete")
    ids = []
    for i in range(4):
        root_fn(f"q{i}", i)
        ids.append(mlflow.get_last_active_trace_id())
    client = mlflow_client.client()
    assert client.delete_traces(experiment.experiment_id, trace_ids=[ids[0]]) == 1
    assert mlflow.get_trace(ids[0]) is None
    with pytest.raises(MlflowException) as err:
        client.get_trace(ids[0])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    cutoff = int(time.time() * 1000) + 1
    assert client.delete_traces(experiment.experiment_id, max_timestamp_millis=cutoff, max_traces=2) == 2
    remaining = mlflow.search_traces(locations=[experiment.experiment_id], return_type="list")
    assert len(remaining) == 1
    assert remaining[0].info.trace_id in ids[1:]
