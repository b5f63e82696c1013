"""The current span follows asyncio tasks by itself and threads through wrap_context."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import tracelake


def test_asyncio_tasks_inherit_the_current_span(exporter):
    @tracelake.trace
    async def leaf(i):
        await asyncio.sleep(0.001 * (3 - i))
        return tracelake.get_current_span().parent_id

    @tracelake.trace
    async def fan_out():
        return await asyncio.gather(*(asyncio.create_task(leaf(i)) for i in range(3)))

    parents = asyncio.run(fan_out())
    assert tracelake.flush()
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.name == "fan_out"]
    assert parents == [root.span_id] * 3
    assert {s.trace_id for s in spans} == {root.trace_id}


def test_threads_follow_the_span_through_wrap_context(exporter):
    @tracelake.trace
    def work(i):
        return threading.current_thread().name

    with tracelake.start_span("request") as request:
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(tracelake.wrap_context(work), range(6)))
    assert tracelake.flush()
    workers = [s for s in exporter.get_finished_spans() if s.name == "work"]
    assert len(workers) == 6
    assert {s.parent_id for s in workers} == {request.span_id}
    assert {s.trace_id for s in workers} == {request.trace_id}


def test_a_thread_without_wrap_context_starts_its_own_trace(exporter):
    result = {}

    def work():
        with tracelake.start_span("detached") as span:
            result["trace"] = span.trace_id

    with tracelake.start_span("request") as request:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert result["trace"] != request.trace_id


def test_current_span_is_per_thread():
    seen = {}
    ready = threading.Event()

    def other():
        ready.wait(5)
        seen["other"] = tracelake.get_current_span()

    thread = threading.Thread(target=other)
    thread.start()
    with tracelake.start_span("main-only"):
        ready.set()
        thread.join()
    assert seen["other"] is None
