"""`store: postgresql://...` in aisre.yaml: the recorder and `aisre watch` on a real PostgreSQL 15, and the
start-up refusal of features still SQLite-only (one error, before any connection is tried)."""

from __future__ import annotations

import subprocess

import pytest

from aisre.config import load_config, parse_config
from aisre.errors import StoreError
from aisre.records import InferenceRecord
from aisre.store.postgres import PostgresStore, sqlite_only_config
from aisre.telemetry.recorder import Recorder

from .conftest import PYTHON, free_port
from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL


def test_the_recorder_refuses_sqlite_only_features_of_a_postgresql_config_before_connecting() -> None:
    closed = free_port()  # nothing listens: the refusal must come before any connection attempt
    cfg = parse_config(f"store: postgresql://aisre@127.0.0.1:{closed}/aisre\nauth: {{enabled: true, admin_key: a}}")
    expected = sqlite_only_config(cfg)  # the one list, which shrinks as features reach PostgreSQL
    with pytest.raises(StoreError) as caught:
        Recorder.from_config(cfg)
    message = str(caught.value)
    if expected:
        assert "need a sqlite:/// store" in message and "issue #12" in message
        assert all(feature in message for feature in expected)
    else:  # every feature is on PostgreSQL now: the error is the closed port
        assert "need a sqlite:/// store" not in message and str(closed) in message


def test_the_default_dashboard_refusal_says_how_to_turn_it_off() -> None:
    cfg = parse_config("store: postgresql://aisre@127.0.0.1:5432/aisre")
    used = sqlite_only_config(cfg)
    if not used:
        pytest.skip("the dashboard runs on PostgreSQL now: nothing to turn off")
    assert used == ["dashboard.enabled (per-minute traffic rollups; on by default: set `dashboard: {enabled: false}`)"]


def test_a_config_file_naming_a_postgresql_store_records_into_it(pg_server, tmp_path) -> None:  # noqa: F811
    url = pg_server.create_schema()
    config = tmp_path / "aisre.yaml"
    config.write_text(f"store: {{url: '{url}', durability: durable}}\ndashboard: {{enabled: false}}\n")
    recorder = Recorder.from_config(load_config(config))
    try:
        assert isinstance(recorder.store, PostgresStore)
        ids = []
        for i in range(5):
            r = InferenceRecord(model="fraud", version="v1", inputs={"amount": i}, prediction=i % 2)
            assert recorder.record(r)
            ids.append(r.id)
        recorder.flush()
    finally:
        recorder.close()
    store = PostgresStore(url)
    try:
        assert store.missing_ids(ids) == [] and store.count() == 5
    finally:
        store.close()
    assert not list(tmp_path.glob("*.db")), "no SQLite file is made beside the config"


def test_watch_on_a_postgresql_store_names_the_features_it_cannot_run_there_yet(pg_server, tmp_path) -> None:  # noqa: F811
    url = pg_server.create_schema()
    config = tmp_path / "aisre.yaml"
    config.write_text(
        f"store: '{url}'\n"
        "monitors: [{name: m, model: fraud, version: v1, window: 1h, reference: {since: 0, until: 3600}}]\n"
    )
    cfg = load_config(config)
    used = sqlite_only_config(cfg.model_copy(update={"dashboard": cfg.dashboard.model_copy(update={"enabled": False})}))
    if not used:
        pytest.skip("monitors run on PostgreSQL now")
    done = subprocess.run(
        [PYTHON, "-m", "aisre", "watch", "-c", str(config), "--once"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "monitors" in done.stderr and "issue #12" in done.stderr
    assert "dashboard" not in done.stderr  # watch serves no dashboard: its default is not held against it
