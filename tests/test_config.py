from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aisre.config import load_config, parse_config
from aisre.errors import ConfigError

from .conftest import PYTHON


def test_defaults_work_with_an_empty_file():
    cfg = parse_config("")
    assert cfg.store.url == "sqlite:///aisre.db"
    assert cfg.store.durability == "fast"


def test_store_accepts_a_url_shorthand_and_a_mapping():
    assert parse_config("store: sqlite:///x.db").store.path == "x.db"
    cfg = parse_config("store: {url: 'sqlite:///y.db', durability: durable, retention_days: 7}")
    assert (cfg.store.path, cfg.store.durability, cfg.store.retention_days) == ("y.db", "durable", 7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("store: {durabilty: fast}", "store.durabilty: unknown key; did you mean 'durability'?"),
        ("store: {durability: fsat}", "store.durability: Input should be 'durable' or 'fast' (got 'fsat')"),
        ("store: postgres://db", "store.url: expected 'sqlite:///PATH'"),
        ("store: {queue_size: -5}", "store.queue_size: Input should be greater than 0 (got -5)"),
        ("telemetry: {metrics: {port: abc}}", "telemetry.metrics.port"),
        ("telemetry: {tracing: {otlp_endpoint: 'localhost:4318'}}", "expected an http(s) URL"),
        ("redaction: {drop: [ssn], hash: [ssn]}", "fields listed in both drop and hash: ['ssn']"),
        ("stor: sqlite:///x.db", "stor: unknown key; did you mean 'store'?"),
        ("store: [1, 2", "not valid YAML at line 1"),
        ("- just\n- a list", "expected a mapping of sections, got list"),
        ("store: ${AISRE_TEST_UNSET_VAR}", "store: environment variable AISRE_TEST_UNSET_VAR is not set"),
        (
            'models: {m: {protocol: openai, versions: {v1: {replicas: ["http://h/v1"], headers: {x-key: "a\\r\\nhost: evil"}}}}}',
            "models.m.versions.v1.headers: header 'x-key': names may not contain spaces",
        ),
    ],
)
def test_bad_config_names_the_key_and_what_was_expected(text: str, expected: str):
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert expected in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config("store: {durability: x, overflow: y}\nlog: {jsonl: 3}")
    assert len(err.value.problems) == 3


def test_environment_variables_are_expanded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_TEST_DB", "from-env.db")
    assert parse_config("store: sqlite:///${AISRE_TEST_DB}").store.path == "from-env.db"
    assert parse_config("store: sqlite:///${AISRE_TEST_NOPE:-d.db}").store.path == "d.db"


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_check_config_command(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("store: sqlite:///x.db\ntelemetry: {metrics: {port: 9464}}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: {overflow: explode}\n")
    ok = subprocess.run([PYTHON, "-m", "aisre", "check-config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and f"sqlite:///{tmp_path / 'x.db'}" in ok.stdout  # relative to the file
    no = subprocess.run([PYTHON, "-m", "aisre", "check-config", "-c", str(bad)], capture_output=True, text=True)
    assert no.returncode == 2
    assert "store.overflow" in no.stderr and "'block', 'drop' or 'raise'" in no.stderr
    assert "Traceback" not in no.stderr
