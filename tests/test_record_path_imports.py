"""Recording loads no heavy dependency: pyarrow, numpy, scipy, the server and the OTel SDK load when used."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HEAVY = [
    "numpy",
    "scipy",
    "pyarrow",
    "pandas",
    "sklearn",
    "starlette",
    "aiohttp",
    "uvicorn",
    "redis",
    "opentelemetry.sdk",
    "opentelemetry.exporter",
]


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


def test_importing_the_record_layer_loads_nothing_heavy():
    loaded = _loaded_after(
        "import aisre, aisre.store, aisre.telemetry; aisre.Monitor, aisre.open_store, aisre.instrument"
    )
    assert loaded == []


def test_recording_and_flushing_loads_nothing_heavy(tmp_path: Path):
    loaded = _loaded_after(f"""
import aisre
with aisre.Monitor("fraud", "v1", store="sqlite:///{tmp_path / "a.db"}") as monitor:
    rid = monitor.record({{"amount": 1.5}}, 0, latency_s=0.01)
    monitor.label(rid, 1)
    monitor.flush()
""")
    assert loaded == []


def test_parquet_export_loads_pyarrow_when_used(tmp_path: Path):
    loaded = _loaded_after(f"""
import aisre
from aisre.store import export_parquet
store = aisre.open_store("sqlite:///{tmp_path / "a.db"}")
before = "pyarrow" in sys.modules
export_parquet(store, "{tmp_path / "out.parquet"}")
assert not before and "pyarrow" in sys.modules
""")
    assert "pyarrow" in loaded
