"""@trace on every kind of callable: inputs, outputs, nesting, errors, generators."""
from __future__ import annotations

import asyncio
import inspect

import pytest

import tracelake
from tracelake import SpanType


def test_trace_without_arguments_names_span_after_function_and_captures_inputs_outputs(finished):
    @tracelake.trace
    def add(a, b=10):
        return a + b

    assert add(1) == 11
    span = finished()["add"]
    assert span.inputs == {"a": 1, "b": 10}
    assert span.outputs == 11
    assert span.span_type == SpanType.UNKNOWN
    assert span.status == "OK"


def test_trace_with_arguments_sets_name_type_and_attributes(finished):
    @tracelake.trace(name="lookup", span_type=SpanType.RETRIEVER, attributes={"k": 3, "tags": ["a", "b"]})
    def search(query):
        return ["doc"]

    search("q")
    span = finished()["lookup"]
    assert span.span_type == "RETRIEVER"
    assert span.attributes == {"k": 3, "tags": ("a", "b")}


def test_any_string_is_accepted_as_span_type(finished):
    tracelake.trace(span_type="MY_CUSTOM_TYPE")(lambda: None)()
    assert finished()["<lambda>"].span_type == "MY_CUSTOM_TYPE"


@pytest.mark.parametrize(("call", "expected"), [
    (lambda f: f(1, 2), {"a": 1, "b": 2, "c": 3}),
    (lambda f: f(1, b=5), {"a": 1, "b": 5, "c": 3}),
    (lambda f: f(a=1, b=2, c=4), {"a": 1, "b": 2, "c": 4}),
    (lambda f: f(1, 2, 9), {"a": 1, "b": 2, "c": 9}),
])
def test_inputs_are_the_bound_call_arguments_with_defaults(finished, call, expected):
    @tracelake.trace
    def fn(a, b, c=3):
        return None

    call(fn)
    assert finished()["fn"].inputs == expected


def test_inputs_of_varargs_and_keyword_only_functions(finished):
    @tracelake.trace
    def fn(a, *rest, flag=False, **extra):
        return None

    fn(1, 2, 3, flag=True, x="y")
    assert finished()["fn"].inputs == {"a": 1, "rest": [2, 3], "flag": True, "extra": {"x": "y"}}


def test_methods_leave_self_and_cls_out_of_inputs(finished):
    class Agent:
        @tracelake.trace
        def run(self, question):
            return question.upper()

        @tracelake.trace
        @classmethod
        def build(cls, name):
            return name

        @tracelake.trace
        @staticmethod
        def helper(x):
            return x

    Agent().run("hi")
    Agent.build("b")
    Agent.helper(7)
    spans = finished()
    assert spans["run"].inputs == {"question": "hi"}
    assert spans["run"].outputs == "HI"
    assert spans["build"].inputs == {"name": "b"}
    assert spans["helper"].inputs == {"x": 7}


def test_inputs_are_captured_at_call_time_not_after_mutation(finished):
    @tracelake.trace
    def chat(messages):
        messages.append({"role": "assistant", "content": "hi"})
        return "hi"

    history = [{"role": "user", "content": "hello"}]
    chat(history)
    assert finished()["chat"].inputs == {"messages": [{"role": "user", "content": "hello"}]}


def test_nested_calls_build_a_tree_in_one_trace(finished):
    @tracelake.trace
    def child():
        return tracelake.get_current_span().span_id

    @tracelake.trace
    def parent():
        return child()

    child_id = parent()
    spans = finished()
    assert spans["child"].span_id == child_id
    assert spans["child"].parent_id == spans["parent"].span_id
    assert spans["parent"].parent_id is None
    assert spans["child"].trace_id == spans["parent"].trace_id
    assert tracelake.get_last_trace_id() == spans["parent"].trace_id


def test_exception_is_recorded_and_reraised_unchanged(finished):
    error = ValueError("bad input")

    @tracelake.trace
    def inner():
        raise error

    @tracelake.trace
    def outer():
        return inner()

    with pytest.raises(ValueError) as info:
        outer()
    assert info.value is error
    spans = finished()
    for name in ("inner", "outer"):
        assert spans[name].status == "ERROR"
        assert spans[name].status_message == "ValueError: bad input"
    (event,) = spans["inner"].events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad input"
    assert "raise error" in event.attributes["exception.stacktrace"]


def test_async_function_is_traced_and_stays_a_coroutine_function(finished):
    @tracelake.trace(span_type=SpanType.TOOL)
    async def fetch(url):
        await asyncio.sleep(0)
        return {"url": url}

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch("u")) == {"url": "u"}
    span = finished()["fetch"]
    assert (span.inputs, span.outputs, span.span_type) == ({"url": "u"}, {"url": "u"}, "TOOL")


def test_async_exception_is_recorded_and_reraised(finished):
    @tracelake.trace
    async def boom():
        raise KeyError("k")

    with pytest.raises(KeyError):
        asyncio.run(boom())
    assert finished()["boom"].status == "ERROR"


def test_generator_outputs_are_the_yielded_chunks(finished):
    @tracelake.trace
    def count(n):
        yield from range(n)

    assert inspect.isgeneratorfunction(count)
    assert list(count(3)) == [0, 1, 2]
    span = finished()["count"]
    assert span.inputs == {"n": 3}
    assert span.outputs == [0, 1, 2]


def test_generator_output_reducer_combines_chunks(finished):
    @tracelake.trace(output_reducer="".join)
    def tokens():
        yield "Hel"
        yield "lo"

    assert list(tokens()) == ["Hel", "lo"]
    assert finished()["tokens"].outputs == "Hello"


def test_generator_span_is_current_only_inside_the_generator_body(finished):
    seen = []

    @tracelake.trace
    def gen():
        seen.append(tracelake.get_current_span().name)
        yield 1
        seen.append(tracelake.get_current_span().name)
        yield 2

    with tracelake.start_span("consumer"):
        for _ in gen():
            seen.append(tracelake.get_current_span().name)
    assert seen == ["gen", "consumer", "gen", "consumer"]
    spans = finished()
    assert spans["gen"].parent_id == spans["consumer"].span_id


def test_generator_closed_early_ends_its_span(finished):
    @tracelake.trace
    def forever():
        i = 0
        while True:
            yield i
            i += 1

    gen = forever()
    assert [next(gen), next(gen)] == [0, 1]
    gen.close()
    span = finished()["forever"]
    assert span.outputs == [0, 1]
    assert span.status == "OK"


def test_generator_forwards_send_and_throw(finished):
    @tracelake.trace
    def echo():
        received = yield "ready"
        try:
            yield f"got {received}"
        except KeyError:
            yield "handled"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("x") == "got x"
    assert gen.throw(KeyError("k")) == "handled"
    gen.close()
    assert finished()["echo"].outputs == ["ready", "got x", "handled"]


def test_generator_exception_is_recorded_and_reraised(finished):
    @tracelake.trace
    def failing():
        yield 1
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(failing())
    span = finished()["failing"]
    assert span.status == "ERROR"
    assert span.events[0].attributes["exception.message"] == "mid-stream"


def test_async_generator_is_traced_with_reducer_and_nested_spans(exporter):
    @tracelake.trace
    async def lookup(i):
        return i * 10

    @tracelake.trace(output_reducer=sum)
    async def stream(n):
        for i in range(n):
            yield await lookup(i)

    async def main():
        return [x async for x in stream(3)]

    assert inspect.isasyncgenfunction(stream)
    assert asyncio.run(main()) == [0, 10, 20]
    assert tracelake.flush(10)
    spans = exporter.get_finished_spans()
    (parent,) = [s for s in spans if s.name == "stream"]
    lookups = [s for s in spans if s.name == "lookup"]
    assert parent.outputs == 30
    assert len(lookups) == 3
    assert {s.parent_id for s in lookups} == {parent.span_id}


def test_disabled_tracing_runs_functions_untraced(exporter):
    tracelake.configure(disabled=True, exporter=exporter)

    @tracelake.trace
    def f(x):
        assert tracelake.get_current_span() is None
        return x

    assert f(2) == 2
    assert list(tracelake.trace(lambda: (yield 1))()) == [1]
    with tracelake.start_span("nothing") as span:
        span.set_inputs({"a": 1})
    assert tracelake.flush()
    assert exporter.get_finished_spans() == []


def test_wrapped_function_keeps_name_and_docstring():
    @tracelake.trace
    def documented():
        """Doc."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doc."


def test_every_parameter_kind_is_passed_through_and_captured(exporter):
    default = []

    @tracelake.trace
    def fn(a, b=2, /, c=3, *rest, d, e=default, **extra):
        return (a, b, c, rest, d, e is default, extra)

    assert fn(1, d=4) == (1, 2, 3, (), 4, True, {})
    assert fn(1, 5, 6, 7, 8, d=9, e=10, z=11) == (1, 5, 6, (7, 8), 9, False, {"z": 11})
    assert inspect.signature(fn) == inspect.signature(fn.__wrapped__)
    assert tracelake.flush(10)
    assert [s.inputs for s in exporter.get_finished_spans()] == [
        {"a": 1, "b": 2, "c": 3, "rest": [], "d": 4, "e": [], "extra": {}},
        {"a": 1, "b": 5, "c": 6, "rest": [7, 8], "d": 9, "e": 10, "extra": {"z": 11}},
    ]


def test_parameters_named_like_the_wrapper_internals_are_fine(finished):
    @tracelake.trace
    def fn(name, span, fn, result, _tl_span=0):
        return (name, span, fn, result, _tl_span)

    assert fn("n", "s", "f", "r", _tl_span=1) == ("n", "s", "f", "r", 1)
    assert finished()["fn"].inputs == {"name": "n", "span": "s", "fn": "f", "result": "r", "_tl_span": 1}


def test_callable_objects_and_partials_are_traced_through_args_and_kwargs(finished):
    import functools

    class Tool:
        def __call__(self, query, k=1):
            return f"{query}:{k}"

    tool = tracelake.trace(name="tool")(Tool())
    add = tracelake.trace(name="add")(functools.partial(lambda a, b: a + b, 1))
    assert tool("q", k=2) == "q:2"
    assert add(b=2) == 3
    spans = finished()
    assert spans["tool"].inputs == {"query": "q", "k": 2}
    assert spans["add"].inputs == {"b": 2}


def test_a_call_that_does_not_match_the_signature_raises_like_the_function_without_a_span(exporter):
    @tracelake.trace
    def fn(a, *, b):
        return a

    def plain(a, *, b):
        return a

    with pytest.raises(TypeError) as traced_error:
        fn(1, 2)
    with pytest.raises(TypeError) as plain_error:
        plain(1, 2)
    assert str(traced_error.value) == str(plain_error.value).replace("plain", "fn")
    assert tracelake.flush(10)
    assert exporter.get_finished_spans() == []


def test_async_function_with_keyword_only_parameters(finished):
    @tracelake.trace
    async def fetch(url, *, retries=3):
        return {"url": url, "retries": retries}

    assert asyncio.run(fetch("u", retries=1)) == {"url": "u", "retries": 1}
    assert inspect.iscoroutinefunction(fetch)
    assert finished()["fetch"].inputs == {"url": "u", "retries": 1}
