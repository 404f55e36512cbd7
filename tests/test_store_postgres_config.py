"""`store: postgresql://...` in aisre.yaml: the recorder and `aisre watch` on a real PostgreSQL 15, and the
start-up refusal of features still SQLite-only (one error, before any connection is tried)."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
import yaml

from aisre import Monitor
from aisre.config import load_config, parse_config
from aisre.errors import StoreError
from aisre.records import InferenceRecord
from aisre.store.postgres import PostgresStore, sqlite_only_config
from aisre.telemetry.recorder import Recorder

from .conftest import PYTHON, free_port
from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL

HOUR = 3600.0


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


def test_every_feature_of_a_config_may_run_on_postgresql() -> None:
    cfg = parse_config(
        "store: postgresql://aisre@127.0.0.1:5432/aisre\nauth: {enabled: true, admin_key: a}\n"
        "monitors: [{name: m, model: fraud, version: v1, window: 1h, reference: {since: 0, until: 3600}}]\n"
    )
    assert cfg.dashboard.enabled and sqlite_only_config(cfg) == []


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


def test_watch_once_runs_a_drift_monitor_over_a_postgresql_store(pg_server, tmp_path) -> None:  # noqa: F811
    from .test_monitor_jobs import drifted_windows

    # Six hours ending two hours ago: catch_up then has no months of empty windows to walk (on PostgreSQL
    # each costs round trips; with test_monitor_jobs' fixed T0 that was ~8,000 windows and ~30 s).
    T0 = (time.time() // HOUR - 8) * HOUR
    url = pg_server.create_schema()
    rng = np.random.default_rng(7)
    mon = Monitor("fraud", "v1", store=url)  # fast: close() drains the writer (1,200 durable commits took ~10 s)
    for h in range(6):  # from hour 3 on, `amount` is shifted by +5 sd
        for i in range(200):
            amount = float(rng.normal(5.0 if h >= 3 else 0.0, 1.0))
            mon.record({"amount": amount}, prediction=int(amount > 0), ts=T0 + h * HOUR + i * (HOUR / 200))
    mon.recorder.close()
    config = tmp_path / "aisre.yaml"
    monitor = {"name": "fraud-drift", "model": "fraud", "reference": {"since": T0, "until": T0 + HOUR}}
    config.write_text(yaml.safe_dump({"store": url, "monitors": [{**monitor, "window": "1h"}]}))
    done = subprocess.run(
        [PYTHON, "-m", "aisre", "watch", "-c", str(config), "--once"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    store = PostgresStore(url)
    try:
        assert drifted_windows(store) == {T0 + h * HOUR: h >= 3 for h in range(6)}
    finally:
        store.close()
    assert not list(tmp_path.glob("*.lock")), "the runner lock is an advisory lock, not a file"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_windows_label_fingerprint_is_the_same_on_both_backends(backend, request, tmp_path) -> None:
    from aisre.monitor.jobs.relabel import Fingerprint, fingerprint
    from aisre.records import Label
    from aisre.store import open_store

    from .store_contract import backend_url

    store = open_store(backend_url(backend, tmp_path, request))
    try:
        records = [
            InferenceRecord(model="m", version=f"v{i % 2}", inputs={}, ts=100.0 + i, id=f"r{i}") for i in range(10)
        ]
        store.write_batch(records, durable=True)
        assert fingerprint(store, "m", None, 100.0, 110.0) == Fingerprint(0, None)
        store.add_labels([Label(record_id=f"r{i}", value=1, ts=500.0 + i) for i in (1, 2, 3, 8)])
        assert fingerprint(store, "m", None, 100.0, 110.0) == Fingerprint(4, 508.0)
        assert fingerprint(store, "m", "v1", 100.0, 110.0) == Fingerprint(2, 503.0)
        assert fingerprint(store, "m", None, 100.0, 103.0) == Fingerprint(2, 502.0)  # until is exclusive
        assert fingerprint(store, "other", None, 0.0, 1e9) == Fingerprint(0, None)
    finally:
        store.close()
