"""Server-side masking rules applied to decoded spans before storage."""
from __future__ import annotations

import json

import pytest

from tracelake.errors import InvalidRequest
from tracelake.ingest import apply_masking, compile_rules
from tracelake.ingest.masking import mask_spans
from tests.ingest.conftest import decode, protobuf_body, record

EMAIL = {"kind": "regex", "pattern": r"[\w.]+@[\w.]+", "replacement": "<email>"}


def _batch(attributes, event_attributes=None, status_message=None):
    def run(tracer):
        span = tracer.start_span("s", attributes=attributes)
        if event_attributes:
            span.add_event("e", event_attributes)
        if status_message:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, status_message))
        span.end()
    return decode(protobuf_body(record(run))).batches[0]


def test_regex_masks_inside_json_inputs_and_outputs_keeping_valid_json():
    inputs = json.dumps({"messages": [{"role": "user", "content": "mail ann@x.org\nplease"}], "n": 1})
    batch = _batch({"mlflow.spanInputs": inputs, "mlflow.spanOutputs": json.dumps(["bob@y.com", 2])})
    assert apply_masking(batch, [EMAIL]) is batch
    (span,) = batch.spans
    assert json.loads(span.inputs) == {"messages": [{"role": "user", "content": "mail <email>\nplease"}], "n": 1}
    assert json.loads(span.outputs) == ["<email>", 2]


@pytest.mark.parametrize("replacement", ['"}]\\', '\\1 "quoted" \\n'])
def test_replacements_with_json_or_regex_syntax_are_literal_and_keep_json_valid(replacement):
    batch = _batch({"mlflow.spanInputs": json.dumps({"a": "secret-123"})})
    apply_masking(batch, [{"kind": "regex", "pattern": r"secret-(\d+)", "replacement": replacement}])
    assert json.loads(batch.spans[0].inputs) == {"a": replacement}


def test_regex_masks_string_attributes_events_and_status_but_not_other_types():
    batch = _batch({"user.email": "ann@x.org", "tags": ["ok", "bob@y.com"], "count": 3},
                   {"exception.message": "no user ann@x.org"}, "failed for ann@x.org")
    apply_masking(batch, [EMAIL])
    (span,) = batch.spans
    assert span.attributes == {"user.email": "<email>", "tags": ["ok", "<email>"], "count": 3}
    assert span.events[0].attributes == {"exception.message": "no user <email>"}
    assert span.status_message == "failed for <email>"


def test_unmatched_json_text_is_left_byte_for_byte():
    text = '{"b":  1, "a": "no secrets here"}'
    batch = _batch({"mlflow.spanInputs": text})
    assert mask_spans(batch.spans, [EMAIL]) == 0
    assert batch.spans[0].inputs == text


def test_escaped_json_text_is_still_masked():
    text = json.dumps({"a": "\u00e9 ann@x.org"})  # ensure_ascii escapes é as \\u00e9
    batch = _batch({"mlflow.spanInputs": text})
    apply_masking(batch, [{"kind": "regex", "pattern": "é ann", "replacement": "X"}])
    assert json.loads(batch.spans[0].inputs) == {"a": "X@x.org"}


def test_attribute_key_rule_replaces_whole_values_by_exact_name_or_regex():
    batch = _batch({"api_key": "sk-1", "db.password": "hunter2", "http.header.authorization": ["Bearer x"],
                    "user.name": "ann"}, {"api_key": "sk-2"})
    apply_masking(batch, [{"kind": "attribute_key", "pattern": "api_key", "replacement": "***"},
                          {"kind": "attribute_key", "pattern": r".*(password|authorization)"}])
    (span,) = batch.spans
    assert span.attributes == {"api_key": "***", "db.password": "[MASKED]", "http.header.authorization": "[MASKED]",
                               "user.name": "ann"}
    assert span.events[0].attributes == {"api_key": "***"}


def test_attribute_key_rule_on_an_inputs_key_masks_the_inputs():
    batch = _batch({"mlflow.spanInputs": '{"p": "x"}', "mlflow.spanOutputs": '"y"'})
    apply_masking(batch, [{"kind": "attribute_key", "pattern": "mlflow.spanInputs", "replacement": "hidden"}])
    assert (batch.spans[0].inputs, batch.spans[0].outputs) == ('"hidden"', '"y"')


def test_non_json_inputs_are_masked_as_text():
    batch = _batch({"mlflow.spanInputs": "raw ann@x.org"})
    apply_masking(batch, [EMAIL])
    assert json.loads(batch.spans[0].inputs) == "raw <email>"


def test_compiled_rules_are_cached_by_content():
    assert compile_rules([dict(EMAIL)]) is compile_rules([dict(EMAIL, id=7)])


@pytest.mark.parametrize(("rule", "match"), [
    ({"kind": "regex", "pattern": "("}, "invalid regular expression"),
    ({"kind": "regex", "pattern": "a*"}, "matches the empty string"),
    ({"kind": "glob", "pattern": "x"}, "kind must be"),
    ({"kind": "regex", "pattern": ""}, "pattern must be a non-empty string"),
    ({"kind": "regex", "pattern": "x", "replacement": 3}, "replacement must be a string"),
])
def test_bad_rules_are_rejected(rule, match):
    with pytest.raises(InvalidRequest, match=match):
        compile_rules([rule])


def test_no_rules_change_nothing():
    batch = _batch({"mlflow.spanInputs": '{"a": "ann@x.org"}'})
    apply_masking(batch, [])
    assert batch.spans[0].inputs == '{"a": "ann@x.org"}'
