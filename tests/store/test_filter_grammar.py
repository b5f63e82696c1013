"""The trace search grammar, table-driven: valid filters -> AST, invalid ones -> BadFilter
with the position of the offending token. Pure: no database."""
from __future__ import annotations

import pytest

from tracelake.errors import BadFilter, InvalidRequest
from tracelake.store.filter_grammar import (
    And,
    Comparison,
    FieldKind,
    FieldRef,
    Op,
    Or,
    OrderKey,
    Scalar,
    Value,
    parse_filter,
    parse_order_by,
)


def attr(name: str) -> FieldRef:
    return FieldRef(FieldKind.ATTRIBUTE, name)


def tag(key: str) -> FieldRef:
    return FieldRef(FieldKind.TAG, key)


def meta(key: str) -> FieldRef:
    return FieldRef(FieldKind.METADATA, key)


def span(name: str) -> FieldRef:
    return FieldRef(FieldKind.SPAN, name)


def feedback(name: str) -> FieldRef:
    return FieldRef(FieldKind.FEEDBACK, name)


TEXT = FieldRef(FieldKind.TEXT, "text")


def cmp(field: FieldRef, op: Op, value: Scalar | list[Scalar] | None = None) -> Comparison:
    if isinstance(value, list):
        return Comparison(field, op, tuple(Value(v) for v in value))
    return Comparison(field, op, None if value is None else Value(value))


A = cmp(attr("name"), Op.EQ, "a")
B = cmp(attr("name"), Op.EQ, "b")
C = cmp(attr("name"), Op.EQ, "c")

VALID = [
    # attributes, their prefixes and aliases
    ("attributes.status = 'OK'", cmp(attr("status"), Op.EQ, "OK")),
    ("trace.state = 'ok'", cmp(attr("status"), Op.EQ, "OK")),
    ("status = \"ERROR\"", cmp(attr("status"), Op.EQ, "ERROR")),
    ("attribute.status = 'in_progress'", cmp(attr("status"), Op.EQ, "IN_PROGRESS")),
    ("status = 'TRACE_STATUS_UNSPECIFIED'", cmp(attr("status"), Op.EQ, "STATE_UNSPECIFIED")),
    ("ATTRIBUTES.Status != 'OK'", cmp(attr("status"), Op.NE, "OK")),
    ("status IN ('OK', 'ERROR')", cmp(attr("status"), Op.IN, ["OK", "ERROR"])),
    ("status NOT IN ('IN_PROGRESS')", cmp(attr("status"), Op.NOT_IN, ["IN_PROGRESS"])),
    ("timestamp_ms > 1700000000000", cmp(attr("timestamp_ms"), Op.GT, 1700000000000)),
    ("trace.timestamp >= 5", cmp(attr("timestamp_ms"), Op.GE, 5)),
    ("attributes.request_time < 5", cmp(attr("timestamp_ms"), Op.LT, 5)),
    ("execution_time_ms <= 1.5", cmp(attr("execution_time_ms"), Op.LE, 1.5)),
    ("execution_duration = -3", cmp(attr("execution_time_ms"), Op.EQ, -3)),
    ("execution_time > 1e3", cmp(attr("execution_time_ms"), Op.GT, 1000.0)),
    ("execution_time_ms < .5", cmp(attr("execution_time_ms"), Op.LT, 0.5)),
    ("execution_time_ms IS NULL", cmp(attr("execution_time_ms"), Op.IS_NULL)),
    ("trace.end_time > 5", cmp(attr("end_time_ms"), Op.GT, 5)),
    ("execution_time_ms is not null", cmp(attr("execution_time_ms"), Op.IS_NOT_NULL)),
    ("timestamp_ms IN (1, 2.5)", cmp(attr("timestamp_ms"), Op.IN, [1, 2.5])),
    ("name <> 'x'", cmp(attr("name"), Op.NE, "x")),
    ("name != 'x'", cmp(attr("name"), Op.NE, "x")),
    ("trace.client_request_id = 'abc'", cmp(attr("client_request_id"), Op.EQ, "abc")),
    ("request_preview LIKE '%hi%'", cmp(attr("request_preview"), Op.LIKE, "%hi%")),
    ("response_preview ilike '%HI%'", cmp(attr("response_preview"), Op.ILIKE, "%HI%")),
    ("session_id = 's'", cmp(attr("session_id"), Op.EQ, "s")),
    ("user = 'u'", cmp(attr("user"), Op.EQ, "u")),
    ("trace.user_id = 'u'", cmp(attr("user"), Op.EQ, "u")),
    ("request_id = 'tr-1'", cmp(attr("trace_id"), Op.EQ, "tr-1")),
    ("attributes.`status` = 'OK'", cmp(attr("status"), Op.EQ, "OK")),
    # tags and metadata
    ("tags.env = 'prod'", cmp(tag("env"), Op.EQ, "prod")),
    ("tag.env = 'prod'", cmp(tag("env"), Op.EQ, "prod")),
    ("tags.`my.key` = 'v'", cmp(tag("my.key"), Op.EQ, "v")),
    ("tags.\"my key\" = 'v'", cmp(tag("my key"), Op.EQ, "v")),
    ("tags.mlflow.user = 'bob'", cmp(tag("mlflow.user"), Op.EQ, "bob")),
    ("tags.Env = 'x'", cmp(tag("Env"), Op.EQ, "x")),
    ("metadata.`mlflow.trace.session` = 's1'", cmp(meta("mlflow.trace.session"), Op.EQ, "s1")),
    ("request_metadata.k = 'v'", cmp(meta("k"), Op.EQ, "v")),
    ("run_id = 'r1'", cmp(meta("mlflow.sourceRun"), Op.EQ, "r1")),
    ("tags.env IS NULL", cmp(tag("env"), Op.IS_NULL)),
    ("tags.env IS NOT NULL", cmp(tag("env"), Op.IS_NOT_NULL)),
    ("tags.env NOT IN ('a', 'b')", cmp(tag("env"), Op.NOT_IN, ["a", "b"])),
    ("tags.env ILIKE 'P%'", cmp(tag("env"), Op.ILIKE, "P%")),
    # spans
    ("span.name = 'retrieve'", cmp(span("name"), Op.EQ, "retrieve")),
    ("span.type = 'LLM'", cmp(span("type"), Op.EQ, "LLM")),
    ("span.span_type LIKE 'L%'", cmp(span("type"), Op.LIKE, "L%")),
    ("span.status = 'STATUS_CODE_ERROR'", cmp(span("status"), Op.EQ, "ERROR")),
    ("span.status IN ('ok', 'unset')", cmp(span("status"), Op.IN, ["OK", "UNSET"])),
    # assessments: strings, numbers and booleans are all fine
    ("feedback.correct = true", cmp(feedback("correct"), Op.EQ, True)),
    ("feedback.correct = FALSE", cmp(feedback("correct"), Op.EQ, False)),
    ("feedback.correct = 'yes'", cmp(feedback("correct"), Op.EQ, "yes")),
    ("feedback.score = 0.5", cmp(feedback("score"), Op.EQ, 0.5)),
    ("expectation.answer = 42", cmp(FieldRef(FieldKind.EXPECTATION, "answer"), Op.EQ, 42)),
    ("feedback.`my name` IS NULL", cmp(feedback("my name"), Op.IS_NULL)),
    ("feedback.correct IN (true, 'maybe')", cmp(feedback("correct"), Op.IN, [True, "maybe"])),
    # full text
    ("trace.text ILIKE '%foo%'", cmp(TEXT, Op.ILIKE, "%foo%")),
    ("text LIKE 'x%'", cmp(TEXT, Op.LIKE, "x%")),
    # string escapes; unknown escapes are kept so LIKE can escape % and _
    ("name = 'it\\'s'", cmp(attr("name"), Op.EQ, "it's")),
    ('name = "say \\"hi\\""', cmp(attr("name"), Op.EQ, 'say "hi"')),
    ("name = 'a\\\\b'", cmp(attr("name"), Op.EQ, "a\\b")),
    ("name LIKE '100\\%'", cmp(attr("name"), Op.LIKE, "100\\%")),
    ("name = 'a \"quoted\" word'", cmp(attr("name"), Op.EQ, 'a "quoted" word')),
    ("name = ''", cmp(attr("name"), Op.EQ, "")),
    # boolean structure: AND binds tighter than OR
    ("name = 'a' AND name = 'b'", And((A, B))),
    ("name = 'a' and name = 'b' AND name = 'c'", And((A, B, C))),
    ("name = 'a' OR name = 'b' AND name = 'c'", Or((A, And((B, C))))),
    ("name = 'a' AND name = 'b' OR name = 'c'", Or((And((A, B)), C))),
    ("(name = 'a' OR name = 'b') AND name = 'c'", And((Or((A, B)), C))),
    ("((name = 'a'))", A),
    ("name='a'AND name='b'", And((A, B))),
    ("  name = 'a'  ", A),
]


@pytest.mark.parametrize(("filter_string", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_filter_parses_to_ast(filter_string: str, expected: object) -> None:
    assert parse_filter(filter_string) == expected


@pytest.mark.parametrize("filter_string", [None, "", "   \t\n"])
def test_empty_filter_is_none(filter_string: str | None) -> None:
    assert parse_filter(filter_string) is None


def test_ast_keeps_token_positions() -> None:
    node = parse_filter("tags.env = 'prod' AND timestamp_ms IN (1, 2)")
    assert isinstance(node, And)
    first, second = node.clauses
    assert isinstance(first, Comparison) and isinstance(second, Comparison)
    assert (first.field.position, first.position) == (0, 9)
    assert isinstance(first.value, Value) and first.value.position == 11
    assert second.field.position == 22
    assert isinstance(second.value, tuple) and [v.position for v in second.value] == [39, 42]


INVALID = [
    # unknown fields, pointing at the unknown part
    ("foo.bar = 'x'", 0, "Unknown field prefix 'foo'; use one of: attributes"),
    ("attributes.bogus = 1", 11, "Unknown trace attribute 'bogus'; use one of: trace_id, status"),
    ("bogus = 1", 0, "Unknown trace attribute 'bogus'"),
    ("span.kind = 'x'", 5, "Unknown span field 'kind'; use one of: span.name, span.type, span.status"),
    ("tags. = 'x'", 5, "Missing name after 'tags.'"),
    ("tags.`` = 'x'", 5, "Empty quoted key"),
    ("tags.`open = 'x'", 5, "Unterminated quoted text"),
    # lexical errors
    ("name = 'open", 7, "Unterminated quoted text"),
    ("name ! 'x'", 5, "Unexpected character '!'"),
    ("name = 12abc", 7, "Malformed number '12abc'"),
    ("name = 'x' ; DROP TABLE traces", 11, "Unexpected character ';'"),
    # structure
    ("name 'x'", 5, "Expected a comparator"),
    ("name == 'x'", 6, "Expected a value"),
    ("name = NULL", 7, "Expected a value"),
    ("name = 'x' AND", 14, "Expected a field"),
    ("AND name = 'x'", 0, "Expected a field"),
    ("name = 'x' status = 'OK'", 11, "Expected AND, OR or the end of the filter"),
    ("(name = 'x'", 11, "Expected ')'"),
    ("name = 'x')", 10, "Expected AND, OR or the end of the filter"),
    ("name = 'x' AND (status = 'OK' OR)", 32, "Expected a field"),
    ("name IN 'x'", 8, "Expected '(' to start the IN list"),
    ("name IN ()", 9, "Expected a value"),
    ("name IN ('a' 'b')", 13, "Expected ',' or ')' in the IN list"),
    ("name NOT LIKE 'x'", 9, "Expected IN after NOT"),
    ("name IS 'x'", 8, "Expected NULL after IS"),
    ("name IS NOT 5", 12, "Expected NULL after IS NOT"),
    # comparators that do not fit the field
    ("tags.env < 'a'", 9, "< compares numbers, but tags.env is not numeric"),
    ("name >= 'a'", 5, ">= compares numbers, but attributes.name is not numeric"),
    ("feedback.score > 0.5", 15, "> compares numbers"),
    ("execution_time_ms LIKE '1%'", 18, "attributes.execution_time_ms does not support LIKE"),
    ("status LIKE 'O%'", 7, "attributes.status does not support LIKE; use one of: =, !=, IN, NOT IN"),
    ("status IS NULL", 7, "attributes.status does not support IS NULL"),
    ("span.status ILIKE 'ok'", 12, "span.status does not support ILIKE"),
    ("trace.text = 'foo'", 11, "trace.text does not support =; use one of: LIKE, ILIKE"),
    # values that do not fit the field
    ("timestamp_ms = '123'", 15, "attributes.timestamp_ms is numeric (milliseconds); expected a number, not a string"),
    ("timestamp_ms > true", 15, "expected a number, not a boolean"),
    ("timestamp_ms IN (1, 'a')", 20, "expected a number"),
    ("name = 5", 7, "attributes.name is a string field; expected a quoted string, not a number"),
    ("tags.env = true", 11, "tags.env is a string field; expected a quoted string, not a boolean"),
    ("status = 'DONE'", 9, "Invalid trace state 'DONE'; expected one of: OK, ERROR, IN_PROGRESS"),
    ("status IN ('OK', 3)", 17, "Invalid trace state 3"),
    ("span.status = 'FAILED'", 14, "Invalid span status 'FAILED'; expected one of: OK, ERROR, UNSET"),
    ("trace.text LIKE 5", 16, "LIKE needs a quoted pattern"),
    ("feedback.correct LIKE true", 22, "LIKE needs a quoted pattern"),
    ("name LIKE 'abc\\\\'", 10, "LIKE pattern ends with a lone escape character"),  # decodes to abc\
]


@pytest.mark.parametrize(("filter_string", "position", "message"), INVALID, ids=[v[0] for v in INVALID])
def test_invalid_filter_points_at_bad_token(filter_string: str, position: int, message: str) -> None:
    with pytest.raises(BadFilter) as info:
        parse_filter(filter_string)
    assert info.value.position == position
    assert message in info.value.reason
    assert info.value.filter_string == filter_string


def test_deep_nesting_is_refused_before_the_recursion_limit() -> None:
    assert parse_filter("(" * 32 + "name = 'a'" + ")" * 32) == A
    with pytest.raises(BadFilter, match="Parentheses nest deeper than 32 levels") as info:
        parse_filter("(" * 5000 + "name = 'a'" + ")" * 5000)
    assert info.value.position == 32


def test_bad_filter_is_a_400_with_a_pointer() -> None:
    with pytest.raises(BadFilter) as info:
        parse_filter("tags.env < 'a'")
    assert isinstance(info.value, InvalidRequest) and info.value.status == 400
    assert info.value.message.endswith("  tags.env < 'a'\n           ^")


ORDER_VALID = [
    (None, [OrderKey("timestamp_ms", True)]),
    ([], [OrderKey("timestamp_ms", True)]),
    (["timestamp_ms DESC"], [OrderKey("timestamp_ms", True)]),
    (["attributes.timestamp_ms ASC"], [OrderKey("timestamp_ms", False)]),
    (["trace.request_time"], [OrderKey("timestamp_ms", False)]),
    (["execution_time_ms"], [OrderKey("execution_time_ms", False)]),
    (["end_time DESC", "experiment_id"], [OrderKey("end_time_ms", True), OrderKey("experiment_id", False)]),
    (["name", "status desc"], [OrderKey("name", False), OrderKey("status", True)]),
    (["trace.execution_time desc", "request_id"], [OrderKey("execution_time_ms", True), OrderKey("trace_id", False)]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDER_VALID, ids=[repr(v[0]) for v in ORDER_VALID])
def test_valid_order_by(order_by: list[str] | None, expected: list[OrderKey]) -> None:
    assert list(parse_order_by(order_by)) == expected


ORDER_INVALID = [
    ("tags.env", 0, "Cannot order by tags.env; sortable attributes are: timestamp_ms"),
    ("request_preview DESC", 0, "Cannot order by request_preview"),
    ("trace.text", 0, "Cannot order by trace.text"),
    ("bogus", 0, "Unknown trace attribute 'bogus'"),
    ("timestamp_ms UP", 13, "Expected ASC, DESC or the end of the order_by clause"),
    ("timestamp_ms DESC name", 18, "Expected ASC, DESC or the end"),
    ("", 0, "order_by expects a trace attribute"),
    ("DESC", 0, "order_by expects a trace attribute"),
]


@pytest.mark.parametrize(("clause", "position", "message"), ORDER_INVALID, ids=[v[0] or "empty" for v in ORDER_INVALID])
def test_invalid_order_by(clause: str, position: int, message: str) -> None:
    with pytest.raises(BadFilter) as info:
        parse_order_by(["name", clause])  # positions are relative to the bad clause
    assert info.value.position == position
    assert message in info.value.reason


def test_order_by_rejects_a_repeated_key() -> None:
    with pytest.raises(BadFilter, match="order_by names timestamp_ms twice"):
        parse_order_by(["timestamp_ms", "trace.timestamp DESC"])
