"""The public surface: __all__ resolves, and `import tracelake` stays light."""
from __future__ import annotations

import subprocess
import sys

import tracelake


def test_every_name_in_all_resolves():
    for name in tracelake.__all__:
        assert getattr(tracelake, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    try:
        tracelake.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_loads_no_server_store_http_or_third_party_modules():
    code = ("import sys, tracelake; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('http', 'gzip', 'openai', 'opentelemetry', 'starlette', 'sqlalchemy', 'mlflow') "
            "or m.startswith(('tracelake.server', 'tracelake.store'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert out.stdout.strip() == "[]"


def test_import_does_not_start_threads_or_read_configuration():
    code = "import threading, tracelake; print(threading.active_count(), tracelake.tracing._runtime.RUNTIME.ready)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert out.stdout.split() == ["1", "False"]
