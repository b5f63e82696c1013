"""The JSONL file exporter and the in-memory exporter shipped for users' tests."""
from __future__ import annotations

import orjson

import tracelake
from tracelake import InMemorySpanExporter
from tracelake.tracing.exporters.file import FileSpanExporter


def test_file_exporter_appends_one_json_object_per_span(tmp_path):
    path = tmp_path / "out" / "spans.jsonl"
    path.parent.mkdir()
    tracelake.configure(exporter=FileSpanExporter(path))
    with tracelake.start_span("root") as root:
        with tracelake.start_span("child", span_type="TOOL") as child:
            child.set_inputs({"a": 1})
    assert tracelake.flush(10)
    lines = [orjson.loads(line) for line in path.read_text().splitlines()]
    by_name = {line["name"]: line for line in lines}
    assert set(by_name) == {"root", "child"}
    assert by_name["child"]["trace_id"] == root.trace_id
    assert by_name["child"]["parent_span_id"] == root.span_id
    assert by_name["child"]["span_type"] == "TOOL"
    assert by_name["child"]["status"] == "OK"
    assert orjson.loads(by_name["child"]["attributes"]["mlflow.spanInputs"]) == {"a": 1}


def test_file_exporter_reports_unwritable_path_without_raising(tmp_path, caplog):
    exporter = FileSpanExporter(tmp_path / "missing-dir" / "spans.jsonl")
    tracelake.configure(exporter=exporter)
    tracelake.start_span("lost").end()
    assert tracelake.flush(10)
    assert tracelake.get_export_stats().failed == 1
    assert "cannot write spans" in caplog.text


def test_memory_exporter_groups_spans_by_trace_and_clears():
    memory = InMemorySpanExporter()
    tracelake.configure(exporter=memory)
    with tracelake.start_span("a") as a:
        with tracelake.start_span("b"):
            pass
    with tracelake.start_span("other"):
        pass
    assert tracelake.flush(10)
    assert [s.name for s in memory.get_trace(a.trace_id)] == ["a", "b"]
    assert len(memory.get_finished_spans()) == 3
    memory.clear()
    assert memory.get_finished_spans() == []
