"""Process-level memory choices of the server: what it imports, malloc arenas, the lake child."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tracelake.server.memory import limit_malloc_arenas


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_server_process_does_not_load_the_lake_stack_until_a_lake_route_is_used(tmp_path) -> None:
    out = _run(f"""
        import sys
        from starlette.testclient import TestClient
        from tracelake.server import create_app
        from tracelake.settings import Settings
        d = {str(tmp_path)!r}
        app = create_app(Settings().replace(store=f"sqlite:///{{d}}/t.db", artifacts=d + "/a", lake=d + "/l",
                                            lake_sync_interval_s=0))
        heavy = ("pyarrow", "deltalake", "duckdb", "sqlglot", "pandas")
        print(sorted(m for m in heavy if m in sys.modules))
        with TestClient(app) as client:
            assert client.get("/api/tracelake/lake/tables").status_code == 200
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    before, after = out.splitlines()
    assert before == "[]"
    assert "pyarrow" in after and "deltalake" in after  # loaded on demand, and the route works


def test_the_lake_process_converts_without_pandas() -> None:
    out = _run("""
        import sys
        from tracelake.lake.worker import _WithoutPandas
        sys.meta_path.insert(0, _WithoutPandas())
        import pyarrow as pa
        from tracelake.lake.source import spans_table
        from tracelake.lake.tables import SPANS
        table = spans_table({name: [None] for name in SPANS.schema.names} | {
            "trace_id": ["tr-1"], "span_id": ["s1"], "attributes": [[("k", "v")]], "events": [[]]})
        print(table.num_rows, "pandas" in sys.modules)
    """)
    assert out == "1 False"


def test_malloc_arenas_are_capped_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":  # the cap is a glibc mallopt; elsewhere it reports False
        assert limit_malloc_arenas() is False
        return
    assert limit_malloc_arenas() is True
