from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aisre.config import checks, load_config, parse_config
from aisre.errors import ConfigError

from .conftest import PYTHON


def test_defaults_work_with_an_empty_file():
    cfg = parse_config("")
    assert cfg.store.url == "sqlite:///aisre.db"
    assert cfg.store.durability == "fast"


def test_store_accepts_a_postgresql_url_as_shorthand_or_mapping_and_treats_it_as_no_file(tmp_path):
    url = "postgresql://aisre@db.internal:5432/aisre"
    assert parse_config(f"store: {url}").store.url == url
    cfg = parse_config("store: {url: 'postgres://u@h/db?options=-csearch_path%3Dx', durability: durable}")
    assert (cfg.store.is_sqlite, cfg.store.durability) == (False, "durable")
    assert parse_config("store: 'postgresql://u@/db?host=/run/postgresql'").store.url.endswith("/run/postgresql")
    config = tmp_path / "aisre.yaml"
    config.write_text(f"store: {url}\n")
    loaded = load_config(config)  # resolve_paths leaves a server URL alone; no directory check fires
    assert loaded.store.url == url and checks.problems(loaded, parts=[checks.RECORDER]) == []
    with pytest.raises(ValueError, match="PostgreSQL database: it has no file path"):
        loaded.store.path  # noqa: B018 -- the property refuses


def test_a_malformed_postgresql_url_is_refused_without_echoing_its_password():
    with pytest.raises(ConfigError) as info:
        parse_config("store: 'postgresql://aisre:hunter2hunter2@db:x/aisre'")
    assert "store.url: not a usable PostgreSQL URL" in str(info.value)
    assert "hunter2" not in str(info.value) and "aisre:***@db:x" in str(info.value)


def test_api_keys_on_a_postgresql_store_need_the_server_secret_in_the_environment(monkeypatch):
    cfg = parse_config("store: postgresql://u@h/db\nauth: {enabled: true, admin_key: a}")
    monkeypatch.delenv("AISRE_KEY_SECRET", raising=False)
    found = checks.problems(cfg, parts=[checks.GATEWAY])
    assert any(
        p.startswith("auth.key_secret_env: $AISRE_KEY_SECRET is not set: API keys on a PostgreSQL") for p in found
    )
    monkeypatch.setenv("AISRE_KEY_SECRET", "short")
    assert any("at least 32 characters, got 5" in p for p in checks.problems(cfg, parts=[checks.GATEWAY]))
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    assert not [p for p in checks.problems(cfg, parts=[checks.GATEWAY]) if p.startswith("auth")]


def test_store_accepts_a_url_shorthand_and_a_mapping():
    assert parse_config("store: sqlite:///x.db").store.path == "x.db"
    cfg = parse_config("store: {url: 'sqlite:///y.db', durability: durable, retention_days: 7}")
    assert (cfg.store.path, cfg.store.durability, cfg.store.retention_days) == ("y.db", "durable", 7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("store: {durabilty: fast}", "store.durabilty: unknown key; did you mean 'durability'?"),
        ("store: {durability: fsat}", "store.durability: Input should be 'durable' or 'fast' (got 'fsat')"),
        ("store: mysql://db", "store.url: expected 'sqlite:///PATH' (e.g. sqlite:///aisre.db) or 'postgresql://"),
        ("store: postgres://db", "store.url: the PostgreSQL URL names no database (the /db after the host); expected"),
        ("store: postgresql:///aisre", "store.url: the PostgreSQL URL names no host; expected 'sqlite:///PATH'"),
        ("store: 'postgresql://a:pw@h:99999/db'", "store.url: not a usable PostgreSQL URL (Port out of range"),
        ("store: {queue_size: -5}", "store.queue_size: Input should be greater than 0 (got -5)"),
        ("telemetry: {metrics: {port: abc}}", "telemetry.metrics.port"),
        ("telemetry: {tracing: {otlp_endpoint: 'localhost:4318'}}", "expected an http(s) URL"),
        ("redaction: {drop: [ssn], hash: [ssn]}", "fields listed in both drop and hash: ['ssn']"),
        ("stor: sqlite:///x.db", "stor: unknown key; did you mean 'store'?"),
        (  # inside a list item, and an aliased key (`for`): the suggestion walks lists and names aliases
            "slos: [{name: a, model: m, objectiv: 0.9, objective: 0.9, sli: {kind: availability}}]",
            "slos.0.objectiv: unknown key; did you mean 'objective'?",
        ),
        (
            "breakers: [{model: m, fallback: {version: v1}, open_when: [{error_rate: 0.2, fr: 1m}]}]",
            "breakers.0.open_when.0.fr: unknown key; did you mean 'for'?",
        ),
        ("store: [1, 2", "not valid YAML at line 1"),
        ("- just\n- a list", "expected a mapping of sections, got list"),
        ("store: ${AISRE_TEST_UNSET_VAR}", "store: environment variable AISRE_TEST_UNSET_VAR is not set"),
        (
            'models: {m: {protocol: openai, versions: {v1: {replicas: ["http://h/v1"], headers: {x-key: "a\\r\\nhost: evil"}}}}}',
            "models.m.versions.v1.headers: header 'x-key': names may not contain spaces",
        ),
        (  # HTTP/1.1 carries Latin-1 only, and no control characters: refused here, not on the first request
            'models: {m: {protocol: openai, versions: {v1: {replicas: ["http://h/v1"], headers: {x-key: "\\u2192"}}}}}',
            "models.m.versions.v1.headers: header 'x-key': names may not contain spaces",
        ),
        (
            'models: {m: {protocol: openai, versions: {v1: {replicas: ["http://h/v1"], headers: {x-key: "a\\0b"}}}}}',
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


# -- start-up checks: every problem the runtime refuses, all at once, with the same messages ----------------

GOOD_REPLICA = "http://127.0.0.1:9/v1"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aisre.yaml"
    path.write_text(text)
    return path


def _problems(path: Path, **options: bool) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, check_runtime=True, **options)
    return err.value.problems


def _runtime_refusal(path: Path) -> list[str]:
    """What the gateway says at start-up about the same file (schema-valid, so it builds a typed config)."""
    from aisre.gateway.app import create_app

    with pytest.raises(ConfigError) as err:
        create_app(load_config(path))
    return err.value.problems


def _model(version: str) -> str:
    return f"models:\n  m:\n    protocol: oip\n    versions:\n      v1: {version}\n"


def test_five_different_problems_are_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AISRE_REDACTION_KEY", raising=False)
    path = _write(
        tmp_path,
        f"""redaction: {{hash: [email]}}
state: redis://127.0.0.1:notaport/0
models:
  fraud:
    protocol: oip
    versions:
      v1: {{sklearn: models/missing.joblib}}
      v2: {{replicas: ["{GOOD_REPLICA}"]}}
    route: {{v1: 90, v3: 10}}
    fallback: v9
""",
    )
    assert _problems(path) == [
        "models.fraud.route: names unknown versions ['v3']; versions are ['v1', 'v2']",
        "models.fraud.fallback: names unknown versions ['v9']; versions are ['v1', 'v2']",
        "redaction.hash: set the environment variable AISRE_REDACTION_KEY to a secret key "
        "(hashes of short values without a key can be reversed by guessing)",
        f"models.fraud.versions.v1.sklearn: no such file {tmp_path / 'models' / 'missing.joblib'}",
        "state.url: not a usable Redis URL: Port could not be cast to integer value as 'notaport'",
    ]


def test_cross_references_are_each_reported_at_their_own_key():
    text = """models:
  m:
    protocol: openai
    versions: {v1: {replicas: ["http://h/v1"]}, v2: {sklearn: m.joblib}}
    route: {v1: -1, v7: 1}
    fallback: [v8]
    shadow: {version: v9}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert [p.split(":")[0] for p in err.value.problems] == [
        "models.m.route",
        "models.m.fallback",
        "models.m.shadow.version",
        "models.m.route",
        "models.m.versions.v2.sklearn",
    ]
    assert "weights must be >= 0" in err.value.problems[3] and "use protocol: oip" in err.value.problems[4]


def _not_a_model(tmp_path: Path) -> str:
    (tmp_path / "notes.txt").write_text("amount,country\n12.5,FR\n")
    return _model("{sklearn: notes.txt}")


def _junk_store(tmp_path: Path) -> str:
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 10)
    return "store: sqlite:///junk.db\n"


def _open_secret_file(tmp_path: Path) -> str:
    secret = tmp_path / "aisre.db.key-secret"
    secret.write_text("s" * 64)
    secret.chmod(0o644)
    return (
        f"store: sqlite:///aisre.db\nauth: {{enabled: true, admin_key: a}}\n{_model(f'{{replicas: [{GOOD_REPLICA}]}}')}"
    )


RUNTIME_REFUSALS = {
    "missing model file": (lambda d: _model("{sklearn: nope.joblib}"), "models.m.versions.v1.sklearn: no such file"),
    "file that is not a model": (_not_a_model, "models.m.versions.v1.sklearn: {d}/notes.txt is not a joblib file"),
    "hash without its key": (lambda d: "redaction: {hash: [email]}\n", "redaction.hash: set the environment variable"),
    "store directory missing": (lambda d: "store: sqlite:///no/such/aisre.db\n", "store.url: cannot create store"),
    "store file not SQLite": (_junk_store, "store.url: cannot open store {d}/junk.db: file is not a database"),
    "jsonl directory missing": (lambda d: "log: {jsonl: no/log.jsonl}\n", "log.jsonl: cannot open JSON-lines log"),
    "infinite price": (
        lambda d: _model(f"{{replicas: [{GOOD_REPLICA}], price: {{input_per_1m_usd: .inf}}}}"),
        "models.m.versions.v1.price.input_per_1m_usd: expected a finite number of US dollars >= 0, got inf",
    ),
    "rate past what Redis can count": (
        lambda d: _model(f"{{replicas: [{GOOD_REPLICA}]}}") + "    limits: {tpm: 1000000000}\n",
        "models.m.limits.tpm: must be at most 100,000,000 per minute",
    ),
    "infinite budget": (
        lambda d: _model(f"{{replicas: [{GOOD_REPLICA}]}}") + "    budget: {usd: .inf}\n",
        "models.m.budget.usd: expected a finite number of US dollars",
    ),
    "replica without a host": (
        lambda d: _model("{replicas: ['http://']}"),
        "models.m.versions.v1.replicas.0: cannot use",
    ),
    "replica port out of range": (
        lambda d: _model("{replicas: ['http://127.0.0.1:99999']}"),
        "models.m.versions.v1.replicas.0: cannot use 'http://127.0.0.1:99999': Port out of range",
    ),
    "Redis URL with a bad port": (lambda d: "state: redis://h:x/0\n", "state.url: not a usable Redis URL"),
    "Redis database not a number": (lambda d: "state: redis://h:6379/zero\n", "state.url: the database after"),
    "weak key secret": (
        lambda d: f"auth: {{enabled: true, admin_key: a}}\n{_model(f'{{replicas: [{GOOD_REPLICA}]}}')}",
        "auth.key_secret_env: $AISRE_KEY_SECRET: the server secret for API keys must be at least 32 characters",
    ),
    "key secret file others can read": (_open_secret_file, "auth.key_secret_env: {d}/aisre.db.key-secret: the API"),
}


@pytest.mark.parametrize("case", list(RUNTIME_REFUSALS))
def test_check_runtime_catches_each_start_up_refusal_with_the_runtimes_message(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AISRE_REDACTION_KEY", raising=False)
    monkeypatch.setenv("AISRE_KEY_SECRET", "short")
    if case == "key secret file others can read":
        monkeypatch.delenv("AISRE_KEY_SECRET")
    make, expected = RUNTIME_REFUSALS[case]
    path = _write(tmp_path, make(tmp_path))
    expected = expected.format(d=tmp_path)
    load_config(path)  # the schema alone accepts it: only the start-up checks see the problem
    found = _problems(path)
    assert len(found) == 1 and expected in found[0], found
    assert _runtime_refusal(path) == found  # the gateway refuses it at start-up, with the same words


def test_a_pickle_without_predict_is_refused_when_models_are_loaded(tmp_path: Path):
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "dict.joblib")
    path = _write(tmp_path, _model("{sklearn: dict.joblib}"))
    load_config(path, check_runtime=True)  # without loading, a real joblib file is all it can tell
    found = _problems(path, load_models=True)
    assert found == [f"models.m.versions.v1.sklearn: {tmp_path / 'dict.joblib'} holds dict, which has no predict()"]
    assert _runtime_refusal(path) == found


def test_the_recorder_refuses_what_check_runtime_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from aisre import Recorder

    monkeypatch.delenv("AISRE_REDACTION_KEY", raising=False)
    path = _write(tmp_path, "store: sqlite:///no/x.db\nlog: {jsonl: no/x.jsonl}\nredaction: {hash: [email]}\n")
    found = _problems(path)
    assert len(found) == 3
    with pytest.raises(ConfigError) as err:
        Recorder.from_config(load_config(path))
    assert err.value.problems == found


def test_start_up_checks_still_run_beside_schema_errors(tmp_path: Path):
    path = _write(
        tmp_path,
        """store: {durability: sometimes}
models:
  a: {protocol: oip, versions: {v1: {sklearn: gone.joblib}}, route: {v2: 1}}
  b: {protocol: oip, versions: {v1: {sklearn: gone-too.joblib}}, limits: {rpm: -1}}
""",
    )
    found = _problems(path)
    assert [p.split(":")[0] for p in found] == [
        "store.durability",
        "models.a.route",
        "models.b.limits.rpm",
        "models.a.versions.v1.sklearn",  # a's bad route does not hide its missing file
    ]  # b as a whole is invalid, so its file is not checked (and the store's defaults are not judged)


def test_problems_under_an_unset_environment_variable_are_not_reported_twice(tmp_path: Path):
    path = _write(tmp_path, 'store: ${AISRE_TEST_UNSET_VAR}\nlog: {jsonl: "${AISRE_TEST_UNSET_VAR}"}\n')
    assert [p.split(":")[0] for p in _problems(path)] == ["store", "log.jsonl"]


def test_the_readme_examples_pass_every_start_up_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_path: Path):
    import joblib
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("AISRE_REDACTION_KEY", "r" * 32)
    monkeypatch.setenv("AISRE_ADMIN_KEY", "a" * 32)
    monkeypatch.delenv("AISRE_KEY_SECRET", raising=False)
    (tmp_path / "models").mkdir()
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "models" / "fraud-v1.joblib")
    gateway = """store: sqlite:///aisre.db
models:
  chat:
    protocol: openai
    versions:
      v1: {replicas: ["http://127.0.0.1:9101/v1", "http://127.0.0.1:9102/v1"]}
  fraud:
    protocol: oip
    versions:
      v1: {sklearn: models/fraud-v1.joblib}       # served in-process
      v2: {replicas: ["http://127.0.0.1:9201"]}    # any Open Inference Protocol server
    route: {v1: 90, v2: 10}
    shadow: {version: v2, sample: 0.2}
    fallback: v1
"""
    keys = """auth: {enabled: true, admin_key: "${AISRE_ADMIN_KEY}"}
state: redis://127.0.0.1:6379/0
models:
  chat:
    protocol: openai
    limits: {rpm: 600, tpm: 200000, max_concurrent: 20, max_tokens_per_request: 4096}
    budget: {usd: 50, period: daily}
    versions:
      v1: {replicas: ["http://127.0.0.1:9101/v1"], price: {input_per_1m_usd: 0.5, output_per_1m_usd: 1.5}}
"""
    telemetry = """store:
  url: sqlite:///aisre.db
  durability: fast
  queue_size: 100000
  overflow: block
  retention_days: 30
telemetry:
  metrics: {port: 9464}
  tracing: {enabled: true, otlp_endpoint: http://127.0.0.1:4318/v1/traces, log_content: false}
log:
  jsonl: inferences.jsonl
redaction:
  drop: [ssn]
  hash: [email]
"""
    for text in (gateway, keys, telemetry):
        cfg = load_config(_write(tmp_path, text), check_runtime=True, load_models=True)
        assert cfg.store.path == str(tmp_path / "aisre.db")


def test_the_redis_command_timeout_is_configurable_and_checked():
    config = parse_config("state: {url: 'redis://127.0.0.1:6379/0', timeout_s: 0.5}\n")
    assert config.state.timeout_s == 0.5 and config.state.connect_timeout_s == 0.25
    with pytest.raises(ConfigError) as err:
        parse_config("state: {url: 'redis://127.0.0.1:6379/0', timeout_s: 0}\n")
    assert "state.timeout_s" in str(err.value)
