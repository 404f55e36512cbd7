"""Continuous monitoring jobs: `monitors:` config, the runner over a real SQLite store, restart, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aisre import Monitor
from aisre.clock import ManualClock
from aisre.config import AisreConfig
from aisre.errors import ConfigError
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.store.sqlite import SQLiteStore
from aisre.telemetry.metrics import Metrics

HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a multiple of an hour


def fill(db: Path, hours: int = 6, drift_from: int = 3, per_hour: int = 200) -> None:
    """Records of fraud/v1 one hour at a time; from hour `drift_from` on, `amount` is shifted by +5 sd."""
    rng = np.random.default_rng(7)
    mon = Monitor("fraud", "v1", store=f"sqlite:///{db}", durability="durable")
    for h in range(hours):
        shift = 5.0 if h >= drift_from else 0.0
        for i in range(per_hour):
            amount = float(rng.normal(shift, 1.0))
            mon.record({"amount": amount}, prediction=int(amount > 0), ts=T0 + h * HOUR + i * (HOUR / per_hour))
    mon.recorder.close()


def config(db: Path, **job: object) -> AisreConfig:
    base = {
        "name": "fraud-drift",
        "model": "fraud",
        "version": "v1",
        "reference": {"since": T0, "until": T0 + HOUR},
        "window": "1h",
    }
    return AisreConfig.model_validate({"store": f"sqlite:///{db}", "monitors": [{**base, **job}]})


def drifted_windows(store: SQLiteStore, job: str = "fraud-drift") -> dict[float, bool]:
    return {
        s.window_start: s.breached
        for _, s in store.signals(model="fraud", name="data_drift_share")
        if s.labels.get("monitor") == job
    }


def test_drift_signal_appears_for_the_drifted_windows_only(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    store = SQLiteStore(db)
    metrics = Metrics()
    runner = MonitorRunner(config(db), store, ManualClock(T0 + 6 * HOUR + 10), metrics)
    runner.run_due()
    windows = drifted_windows(store)
    assert windows == {T0 + h * HOUR: h >= 3 for h in range(6)}
    text = metrics.render().decode()
    assert 'monitor="fraud-drift"' in text and "data_drift_share" in text


def test_only_complete_windows_are_checked_and_the_schedule_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    store = SQLiteStore(db)
    clock = ManualClock(T0 + 2 * HOUR + 30 * 60)  # in the middle of hour 2
    runner = MonitorRunner(config(db), store, clock)
    runner.run_due()
    assert sorted(drifted_windows(store)) == [T0, T0 + HOUR]
    clock.advance(20 * 60)  # not due yet (schedule = the window)
    runner.run_due()
    assert sorted(drifted_windows(store)) == [T0, T0 + HOUR]
    clock.advance(HOUR)
    runner.run_due()
    assert sorted(drifted_windows(store)) == [T0, T0 + HOUR, T0 + 2 * HOUR]


def test_a_restarted_runner_resumes_after_the_last_window_without_redoing_it(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    MonitorRunner(config(db), SQLiteStore(db), ManualClock(T0 + 4 * HOUR + 5)).run_due()
    store = SQLiteStore(db)
    assert len(drifted_windows(store)) == 4
    MonitorRunner(config(db), store, ManualClock(T0 + 6 * HOUR + 5)).run_due()
    starts = [s.window_start for _, s in store.signals(model="fraud", name="data_drift_share")]
    assert sorted(starts) == [T0 + h * HOUR for h in range(6)]  # each window exactly once


def test_a_broken_reference_records_the_error_and_the_next_job_still_runs(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    good = config(db).monitors[0].model_dump()
    cfg = AisreConfig.model_validate(
        {
            "store": f"sqlite:///{db}",
            "monitors": [{**good, "name": "broken", "reference": str(bad)}, good],
        }
    )
    store = SQLiteStore(db)
    metrics = Metrics()
    MonitorRunner(cfg, store, ManualClock(T0 + 6 * HOUR + 5), metrics).run_due()
    errors = [s for _, s in store.signals(name="monitor_job_error") if s.labels["monitor"] == "broken"]
    assert errors and errors[0].labels["reason"] == "bad_reference"
    assert "bad.json" in errors[0].labels["error"]
    assert len(drifted_windows(store)) == 6
    assert 'aisre_monitor_job_errors_total{monitor="broken",reason="bad_reference"}' in metrics.render().decode()


def test_too_few_rows_is_recorded_as_the_reason(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, hours=2)
    store = SQLiteStore(db)
    MonitorRunner(config(db, min_rows=500), store, ManualClock(T0 + 2 * HOUR + 5)).run_due()
    reasons = [s.labels["reason"] for _, s in store.signals(name="monitor_job_error")]
    assert reasons == ["too_few_rows", "too_few_rows"]


def test_count_windows_check_every_n_records(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, hours=4, drift_from=2)
    store = SQLiteStore(db)
    MonitorRunner(config(db, window={"every": 400}), store, ManualClock(T0 + 4 * HOUR + 5)).run_due()
    assert list(drifted_windows(store).values()) == [False, True]


@pytest.mark.parametrize(
    ("job", "where", "says"),
    [
        ({"checks": ["data_drift", "cbpe"]}, "monitors.0.checks", "did you mean 'estimated_performance'"),
        ({"checks": ["nonsense"]}, "monitors.0.checks", "unknown check 'nonsense'"),
        ({"window": "1 fortnight"}, "monitors.0.window", "expected a duration"),
        ({"schedule": "-5m"}, "monitors.0.schedule", "expected a duration"),
        ({"model": "nope"}, "monitors.0.model", "no model 'nope' in models: (fraud)"),
    ],
)
def test_bad_monitor_config_is_refused_at_its_key(tmp_path: Path, job: dict, where: str, says: str) -> None:
    from aisre.config import load_config

    monitor = {"name": "fraud-drift", "model": "fraud", "reference": {"since": T0, "until": T0 + HOUR}, "window": "1h"}
    cfg: dict = {"store": f"sqlite:///{tmp_path / 'a.db'}", "monitors": [{**monitor, **job}]}
    cfg["models"] = {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": ["http://127.0.0.1:9"]}}}}
    path = tmp_path / "aisre.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert where in str(info.value) and says in str(info.value)


def test_a_missing_reference_file_is_a_start_up_problem(tmp_path: Path) -> None:
    from aisre.config import checks

    cfg = config(tmp_path / "a.db", reference=str(tmp_path / "missing.json"))
    found = checks.problems(cfg)
    assert any(p.startswith("monitors.0.reference: reference file") for p in found)


def write_config(tmp_path: Path, db: Path, **job: object) -> Path:
    """A config for `aisre watch`, which runs on the real clock: the fixture's records (from T0, months
    ago) are older than the default catch_up of 24 windows, so the cap is lifted to reach them."""
    import yaml

    monitor = {
        "name": "fraud-drift",
        "model": "fraud",
        "reference": {"since": T0, "until": T0 + HOUR},
        "window": "1h",
        "catch_up": 100_000,
    }
    path = tmp_path / "aisre.yaml"
    path.write_text(yaml.safe_dump({"store": f"sqlite:///{db}", "monitors": [{**monitor, **job}]}))
    return path


def test_watch_once_checks_the_due_windows_and_exits_0(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aisre.cli.main import app

    db = tmp_path / "a.db"
    fill(db)
    result = CliRunner().invoke(app, ["watch", "--once", "-c", str(write_config(tmp_path, db))])
    assert result.exit_code == 0, result.output
    assert drifted_windows(SQLiteStore(db)) == {T0 + h * HOUR: h >= 3 for h in range(6)}


def test_watch_once_exits_2_naming_the_window_that_could_not_be_checked(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aisre.cli.main import app

    db = tmp_path / "a.db"
    fill(db, hours=2)
    empty_range = {"since": T0 - 10 * HOUR, "until": T0 - 9 * HOUR}
    result = CliRunner().invoke(app, ["watch", "--once", "-c", str(write_config(tmp_path, db, reference=empty_range))])
    assert result.exit_code == 2
    assert "fraud-drift" in result.output and "bad_reference" in result.output and "holds no records" in result.output


def test_the_runner_lock_is_held_by_one_process_at_a_time(tmp_path: Path) -> None:
    import subprocess
    import sys

    from aisre.monitor.jobs.background import RunnerLock

    path = tmp_path / "a.db.monitors.lock"
    probe = [
        sys.executable,
        "-c",
        f"from aisre.monitor.jobs.background import RunnerLock; print(RunnerLock({str(path)!r}).acquire())",
    ]
    mine = RunnerLock(path)
    assert mine.acquire()
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "False"
    assert not RunnerLock(path).acquire()  # another open of the file, even in this process
    mine.release()
    assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_a_standby_process_takes_over_the_jobs_when_the_holder_stops(tmp_path: Path) -> None:
    import time

    from aisre.monitor.jobs.background import BackgroundMonitors, RunnerLock, lock_path

    db = tmp_path / "a.db"
    fill(db)
    store = SQLiteStore(db)
    cfg = config(db)
    clock = ManualClock(T0 + 2 * HOUR + 5)
    first = BackgroundMonitors(MonitorRunner(cfg, store, clock), RunnerLock(lock_path(db)), retry_s=0.05).start()
    deadline = time.monotonic() + 30
    while len(drifted_windows(store)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    standby_runner = MonitorRunner(cfg, store, clock)
    second = BackgroundMonitors(standby_runner, RunnerLock(lock_path(db)), retry_s=0.05).start()
    time.sleep(0.3)
    assert not second.lock.held
    first.stop()
    clock.advance(2 * HOUR)
    while len(drifted_windows(store)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    second.stop()
    starts = sorted(s.window_start for _, s in store.signals(model="fraud", name="data_drift_share"))
    assert starts == [T0 + h * HOUR for h in range(4)]  # the standby resumed after the holder's windows


@pytest.mark.parametrize("workers", [1, 2])
def test_aisre_serve_runs_the_monitors_and_shows_drift_on_metrics_and_in_the_store(
    tmp_path: Path, workers: int
) -> None:
    """The issue's end-to-end check: no manual command, only `aisre serve` with a `monitors:` section;
    with two workers, exactly one of them checks each window."""
    import os
    import subprocess
    import sys
    import time

    import httpx
    import joblib
    import pandas as pd
    import yaml
    from sklearn.linear_model import LogisticRegression

    from aisre.monitor.profiles.reference import Reference
    from aisre.testing.server import free_port

    rng = np.random.default_rng(3)
    clean = pd.DataFrame({"amount": rng.normal(0, 1, 2000), "age": rng.normal(40, 10, 2000)})
    model = LogisticRegression().fit(clean, (clean["amount"] > 0).astype(int))
    joblib.dump(model, tmp_path / "fraud.joblib")
    Reference.fit(clean).save(tmp_path / "reference.json")
    db = tmp_path / "aisre.db"
    (tmp_path / "aisre.yaml").write_text(
        yaml.safe_dump(
            {
                "store": {"url": f"sqlite:///{db}", "durability": "fast"},
                "models": {
                    "fraud": {"protocol": "oip", "versions": {"v1": {"sklearn": str(tmp_path / "fraud.joblib")}}}
                },
                "monitors": [
                    {
                        "name": "fraud-drift",
                        "model": "fraud",
                        "version": "v1",
                        "reference": str(tmp_path / "reference.json"),
                        "window": "2s",
                        "delay": "0.5s",
                        "checks": ["data_drift"],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    cmd = [
        sys.executable,
        "-m",
        "aisre",
        "serve",
        "-c",
        str(tmp_path / "aisre.yaml"),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    process = subprocess.Popen(cmd, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)

        def send(shift: float, seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                X = np.column_stack([rng.normal(shift, 1, 20), rng.normal(40, 10, 20)])
                body = {"inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}]}
                httpx.post(f"{url}/v2/models/fraud/infer", json=body).raise_for_status()
                time.sleep(0.05)

        send(0.0, 4.0)
        drift_started = time.time()
        store = SQLiteStore(db)
        found: list = []
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            send(6.0, 1.0)  # keep the drifted traffic coming while we look
            found = [
                s
                for _, s in store.signals(model="fraud", name="data_drift_score")
                if s.breached and s.labels.get("feature") == "amount" and (s.window_start or 0) >= drift_started - 2
            ]
        assert found, (tmp_path / "serve.log").read_text()[-3000:]
        for _ in range(20):  # with two workers, the gauges live in the process that runs the jobs
            with httpx.Client() as fresh:  # a new connection may land on either worker
                metrics = fresh.get(f"{url}/metrics").text
            if 'aisre_data_drift_score_breached{feature="amount"' in metrics:
                break
        assert 'aisre_data_drift_score_breached{feature="amount"' in metrics
        line = next(x for x in metrics.splitlines() if x.startswith('aisre_data_drift_score_breached{feature="amount"'))
        assert 'monitor="fraud-drift"' in line
        checked = [s for _, s in store.signals(model="fraud", name="window_rows") if s.labels.get("monitor")]
        assert any(s.value > 0 and (s.window_end or 0) <= drift_started + 1 for s in checked)  # clean windows too
        shares = [s.window_start for _, s in store.signals(model="fraud", name="data_drift_share")]
        assert len(shares) == len(set(shares)), "a window was checked by more than one process"
    finally:
        process.terminate()  # uvicorn re-raises SIGTERM after its clean shutdown: the code is -15
        process.wait(30)
        log.close()
    assert b"Traceback" not in (tmp_path / "serve.log").read_bytes()


def test_a_failed_window_is_not_retried_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill(db, hours=2)
    store = SQLiteStore(db)
    cfg = config(db, min_rows=500)
    MonitorRunner(cfg, store, ManualClock(T0 + 2 * HOUR + 5)).run_due()
    MonitorRunner(cfg, store, ManualClock(T0 + 2 * HOUR + 10)).run_due()
    errors = [s.window_start for _, s in store.signals(name="monitor_job_error")]
    assert errors == [T0, T0 + HOUR]  # each failed window reported once, not again after the restart


def test_watch_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "a.db"
    fill(db)
    cmd = [sys.executable, "-m", "aisre", "watch", "-c", str(write_config(tmp_path, db))]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = SQLiteStore(db)
    deadline = time.monotonic() + 60
    while len(drifted_windows(store)) < 6 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert len(drifted_windows(store)) == 6
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert b"stopped" in out and b"Traceback" not in err
