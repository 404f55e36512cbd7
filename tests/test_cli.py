from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import aisre

from .conftest import PYTHON, free_port


def aisre_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "aisre", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.fixture
def filled(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    now = time.time()
    with aisre.Monitor("fraud", "v1", store=url) as m:
        ids = [
            m.record({"amount": float(i)}, i % 2, latency_s=0.01 * (i + 1), ts=now - 10 + i * 0.01) for i in range(100)
        ]
        m.record({"amount": 1.0}, None, status="error", error="ValueError: bad", latency_s=0.5)
        m.label(ids[0], 1)
    with aisre.Monitor("fraud", "v2", store=url) as m:
        m.record({"amount": 2.0}, 1, latency_s=0.02, cost_usd=0.25, ts=now - 3 * 86_400)
    return url


def test_version():
    out = aisre_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"aisre {aisre.__version__}"


def test_log_stats_table(filled: str):
    out = aisre_cli("log", "stats", "--store", filled)
    assert out.returncode == 0, out.stderr
    v1 = next(line for line in out.stdout.splitlines() if " v1 " in line)
    assert "101" in v1 and "0.99%" in v1  # 1 error in 101
    assert "0.2500" in next(line for line in out.stdout.splitlines() if " v2 " in line)
    recent = aisre_cli("log", "stats", "--store", filled, "--since", "1d")
    assert " v2 " not in recent.stdout


def test_log_tail_json_lines(filled: str):
    out = aisre_cli("log", "tail", "-n", "3", "--json", "--store", filled, "--model", "fraud", "--version", "v1")
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 3 and lines[-1]["status"] == "error"
    table = aisre_cli("log", "tail", "-n", "2", "--store", filled)
    assert table.returncode == 0 and "fraud" in table.stdout


def test_log_export_parquet_with_labels(filled: str, tmp_path: Path):
    target = tmp_path / "out.parquet"
    out = aisre_cli("log", "export", "--parquet", str(target), "--store", filled, "--version", "v1")
    assert out.returncode == 0, out.stderr
    rows = pq.read_table(target).to_pylist()
    assert len(rows) == 101 and sum(r["label"] is not None for r in rows) == 1


def test_log_prune(filled: str):
    out = aisre_cli("log", "prune", "--older-than-days", "1", "--store", filled)
    assert out.returncode == 0 and "deleted 1 records" in out.stdout
    assert aisre.open_store(filled).count() == 101


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "stats", "--since", "yesterday"], "--since: expected a duration like 15m"),
        (["log", "tail", "-n", "-1"], "-n: expected a count >= 0"),
        (["log", "prune", "--older-than-days", "0"], "--older-than-days: expected a number > 0"),
    ],
)
def test_bad_arguments_are_clear(filled: str, args: list[str], message: str):
    out = aisre_cli(*args, "--store", filled)
    assert out.returncode == 2 and message in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_store_and_config_from_cwd(tmp_path: Path):
    out = aisre_cli("log", "stats", cwd=tmp_path)
    assert out.returncode == 2 and "no store at aisre.db" in out.stderr
    (tmp_path / "aisre.yaml").write_text("store: {durability: sometimes}\n")
    bad = aisre_cli("log", "stats", cwd=tmp_path)
    assert bad.returncode == 2 and "store.durability" in bad.stderr


def test_check_config_lists_every_problem_with_its_key_and_exits_2(tmp_path: Path):
    (tmp_path / "aisre.yaml").write_text("""store: sqlite:///missing-dir/aisre.db
redaction: {hash: [email]}
state: redis://127.0.0.1:6379/zero
models:
  fraud:
    protocol: oip
    versions: {v1: {sklearn: fraud.joblib}, v2: {replicas: ["http://127.0.0.1:9201"]}}
    route: {v1: 90, v3: 10}
    shadow: {version: v4}
""")
    env = {k: v for k, v in os.environ.items() if k != "AISRE_REDACTION_KEY"}
    out = subprocess.run(
        [PYTHON, "-m", "aisre", "check-config", "aisre.yaml"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    for key in ("models.fraud.route", "models.fraud.shadow.version", "store.url", "redaction.hash", "state.url"):
        assert f"  - {key}: " in out.stderr, key
    assert "models.fraud.versions.v1.sklearn: no such file" in out.stderr
    assert "[...]" not in out.stderr and "['v1', 'v2']" in out.stderr  # lists in messages are text, not markup


def test_check_config_prints_one_line_when_the_config_is_fine(tmp_path: Path):
    (tmp_path / "aisre.yaml").write_text(
        'models: {chat: {protocol: openai, versions: {v1: {replicas: ["http://127.0.0.1:9101/v1"]}}}}\n'
    )
    out = aisre_cli("check-config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1 and out.stdout.startswith("aisre.yaml: OK; ") and "1 model" in out.stdout


def test_check_config_reaches_redis_only_with_connect(tmp_path: Path):
    from tests.test_redis_state import REDIS_SERVER, RedisServer

    (tmp_path / "aisre.yaml").write_text(f"state: redis://127.0.0.1:{free_port()}/0\n")
    assert aisre_cli("check-config", cwd=tmp_path).returncode == 0  # syntax only: nothing is contacted
    down = aisre_cli("check-config", "--connect", cwd=tmp_path)
    assert down.returncode == 2 and "state.url: cannot reach Redis at redis://127.0.0.1:" in down.stderr
    if REDIS_SERVER is None:
        pytest.skip("redis-server not on PATH: the reachable case needs a real Redis")
    server = RedisServer()
    server.start()
    try:
        (tmp_path / "aisre.yaml").write_text(f"state: {server.url}\n")
        up = aisre_cli("check-config", "--connect", cwd=tmp_path)
        assert up.returncode == 0 and "state shared (Redis)" in up.stdout, up.stderr
    finally:
        server.kill()


def test_check_config_unpickles_models_only_with_load_models(tmp_path: Path):
    import joblib

    joblib.dump(["not", "a", "model"], tmp_path / "m.joblib")
    (tmp_path / "aisre.yaml").write_text("models: {m: {protocol: oip, versions: {v1: {sklearn: m.joblib}}}}\n")
    assert aisre_cli("check-config", cwd=tmp_path).returncode == 0
    loaded = aisre_cli("check-config", "--load-models", cwd=tmp_path)
    assert loaded.returncode == 2 and "models.m.versions.v1.sklearn:" in loaded.stderr
    assert "holds list, which has no predict()" in loaded.stderr
