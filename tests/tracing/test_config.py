"""Settings: explicit argument > TRACELAKE_* env var > default; every setting documented."""
from __future__ import annotations

import pathlib

import pytest

import tracelake
from tracelake.tracing.config import SETTINGS, TracingConfig, resolve_config
from tracelake.tracing.exporters.file import FileSpanExporter
from tracelake.tracing.exporters.server import TracelakeServerExporter
from tracelake.tracing._runtime import RUNTIME

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_defaults_apply_without_arguments_or_env():
    assert resolve_config({}, env={}) == TracingConfig()


def test_env_vars_are_read():
    env = {"TRACELAKE_TRACKING_URI": "http://h:1", "TRACELAKE_EXPERIMENT_NAME": "exp",
           "TRACELAKE_EXPERIMENT_ID": "12", "TRACELAKE_TOKEN": "t0k", "TRACELAKE_SAMPLING_RATIO": "0.25",
           "TRACELAKE_DISABLED": "true"}
    config = resolve_config({}, env=env)
    assert (config.tracking_uri, config.experiment_name, config.experiment_id, config.token,
            config.sampling_ratio, config.disabled) == ("http://h:1", "exp", "12", "t0k", 0.25, True)


def test_explicit_arguments_win_over_env():
    env = {"TRACELAKE_TRACKING_URI": "http://env:1", "TRACELAKE_SAMPLING_RATIO": "0.25"}
    config = resolve_config({"tracking_uri": "http://arg:2", "sampling_ratio": 1}, env=env)
    assert (config.tracking_uri, config.sampling_ratio) == ("http://arg:2", 1.0)


def test_malformed_env_value_is_logged_and_ignored(caplog):
    config = resolve_config({}, env={"TRACELAKE_SAMPLING_RATIO": "lots"})
    assert config.sampling_ratio == 1.0
    assert "TRACELAKE_SAMPLING_RATIO" in caplog.text


def test_malformed_explicit_argument_raises():
    with pytest.raises(ValueError):
        tracelake.configure(sampling_ratio=2.0)
    with pytest.raises(TypeError):
        tracelake.configure(no_such_setting=1)


def test_configure_picks_the_exporter_from_the_tracking_uri(tmp_path):
    tracelake.configure(tracking_uri="http://127.0.0.1:9", experiment_name="e")
    (server,) = RUNTIME.processor.exporters
    assert isinstance(server, TracelakeServerExporter)
    assert server.endpoint == "http://127.0.0.1:9/v1/traces"
    tracelake.configure(tracking_uri=f"file://{tmp_path}/spans.jsonl")
    (file_exporter,) = RUNTIME.processor.exporters
    assert isinstance(file_exporter, FileSpanExporter)
    assert file_exporter.path == f"{tmp_path}/spans.jsonl"


def test_first_span_configures_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACELAKE_TRACKING_URI", f"file://{tmp_path}/env.jsonl")
    RUNTIME.ready = False
    with tracelake.start_span("from-env"):
        pass
    assert tracelake.flush()
    assert "from-env" in (tmp_path / "env.jsonl").read_text()


def test_disabled_env_var_turns_tracing_off(monkeypatch):
    monkeypatch.setenv("TRACELAKE_DISABLED", "1")
    RUNTIME.ready = False
    assert tracelake.start_span("x").trace_id is None
    assert tracelake.get_config().disabled


def test_bad_tracking_uri_in_env_never_raises_into_the_app(monkeypatch, caplog):
    monkeypatch.setenv("TRACELAKE_TRACKING_URI", "ftp://nope")
    RUNTIME.ready = False
    with tracelake.start_span("still-works") as span:
        assert span.trace_id.startswith("tr-")
    assert "bad configuration" in caplog.text


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting):
    text = DOCS.read_text()
    assert setting.env_var in text and f"`{setting.name}`" in text
