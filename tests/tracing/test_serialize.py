"""Safe JSON encoding of arbitrary values: fallbacks, truncation marker."""
from __future__ import annotations

import dataclasses
import datetime
import enum

import orjson
import pydantic
import pytest

import tracelake
from tracelake.tracing.serialize import TRUNCATION_MARKER, attribute_value, safe_repr, to_json


class Opaque:
    def __repr__(self):
        return "<Opaque thing>"


class BrokenRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


class Model(pydantic.BaseModel):
    name: str
    size: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(("value", "expected"), [
    ({"a": [1, 2.5, None, True]}, {"a": [1, 2.5, None, True]}),
    (Model(name="m", size=2), {"name": "m", "size": 2}),
    (Point(1, 2), {"x": 1, "y": 2}),
    (Color.RED, "red"),
    (datetime.date(2024, 5, 1), "2024-05-01"),
    ({1: "int key"}, {"1": "int key"}),
    ({"s": {3}}, {"s": [3]}),
    (Opaque(), "<Opaque thing>"),
    ({"nested": Opaque()}, {"nested": "<Opaque thing>"}),
    (2**70, str(2**70)),
    (b"\x00\x01", "base64:AAE="),
])
def test_values_encode_to_json_or_a_readable_fallback(value, expected):
    assert orjson.loads(to_json(value)) == expected


def test_a_failing_repr_still_gives_text():
    assert "BrokenRepr" in orjson.loads(to_json(BrokenRepr()))
    assert safe_repr(BrokenRepr()) == "<BrokenRepr object (repr failed)>"


def test_cyclic_values_fall_back_to_repr():
    cyc: list = []
    cyc.append(cyc)
    assert orjson.loads(to_json(cyc)) == "[[...]]"


def test_numpy_arrays_encode_as_lists():
    import numpy  # installed with mlflow (a test dependency)

    assert orjson.loads(to_json({"v": numpy.arange(3)})) == {"v": [0, 1, 2]}


def test_oversized_values_are_truncated_with_a_visible_marker():
    text = to_json({"blob": "x" * 10_000}, limit=1_000)
    decoded = orjson.loads(text)
    assert isinstance(decoded, str)
    assert decoded.startswith('{"blob":"xxx')
    assert decoded.endswith(f"{TRUNCATION_MARKER}: 10011 bytes in total")
    assert len(text) < 1_100


def test_max_value_bytes_setting_truncates_span_inputs(exporter):
    tracelake.configure(exporter=exporter, max_value_bytes=500)
    with tracelake.start_span("big") as span:
        span.set_inputs({"doc": "y" * 5_000})
    assert tracelake.flush()
    (got,) = exporter.get_finished_spans()
    assert TRUNCATION_MARKER in got.inputs
    assert len(got._inputs) < 600


@pytest.mark.parametrize(("value", "expected"), [
    ("s", "s"), (1, 1), (1.5, 1.5), (True, True), ([1, 2], (1, 2)), (("a", "b"), ("a", "b")),
    ({"k": 1}, '{"k":1}'), ([1, {"k": 1}], '[1,{"k":1}]'), (None, "null"), (2**64, str(2**64)),
])
def test_attribute_values_keep_primitives_and_encode_the_rest(value, expected):
    assert attribute_value(value) == expected
