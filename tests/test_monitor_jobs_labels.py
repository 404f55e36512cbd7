"""Monitoring jobs over time: late labels re-check their windows, the start-up catch-up is capped, a failing
check records why while the rest and the schedule go on, the reference's freshness mark, and bad configs."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from aisre.clock import ManualClock
from aisre.errors import ConfigError
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.store.sqlite import SQLiteStore
from aisre.telemetry.metrics import Metrics
from tests.monitor_jobs_helpers import HOUR, T0, add_labels, by_window, fill_classifier, job_config

PERFORMANCE = {"metrics": ["accuracy"], "min": {"accuracy": 0.8}, "min_labels": 50}


def accuracy_history(store: SQLiteStore, hour: int) -> list[tuple[float, float, bool]]:
    """(computed at, value, breached) of every accuracy signal of one window, oldest first."""
    return [
        (ts, s.value, s.breached)
        for ts, s in store.signals(name="accuracy")
        if s.labels.get("monitor") == "credit-watch" and s.window_start == T0 + hour * HOUR
    ]


def test_late_labels_recheck_the_window_they_belong_to_and_the_newest_result_wins(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok", "ok", "wrong", "ok"])
    store = SQLiteStore(db)
    clock = ManualClock(T0 + 3 * HOUR + 5)
    metrics = Metrics()
    runner = MonitorRunner(job_config(db, checks=["performance"], performance=PERFORMANCE), store, clock, metrics)
    runner.run_due()  # windows 0-2 checked before any label exists: no accuracy yet
    assert accuracy_history(store, 2) == []
    clock.advance(HOUR)
    add_labels(db, truths[2][:300], clock.now())  # half of hour 2's labels arrive an hour later
    runner.run_due()
    first = accuracy_history(store, 2)
    assert len(first) == 1 and first[0][2]  # the re-check found the wrong predictions
    assert accuracy_history(store, 1) == []  # windows without new labels are left alone
    assert 'aisre_accuracy{metric="accuracy"' not in metrics.render().decode()  # an old window: store only
    clock.advance(HOUR)
    add_labels(db, truths[2][300:], clock.now())
    runner.run_due()
    again = accuracy_history(store, 2)
    assert len(again) == 2 and again[1][0] > again[0][0]  # a second result, computed later
    clock.advance(HOUR)
    runner.run_due()  # nothing new: no third check
    assert len(accuracy_history(store, 2)) == 2
    assert not by_window(store, "accuracy").get(3)  # hour 3 got no labels at all


def test_a_restarted_runner_does_not_recheck_windows_whose_labels_it_already_saw(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok", "ok"])
    add_labels(db, truths[0] + truths[1], T0 + HOUR)
    cfg = job_config(db, checks=["performance"], performance=PERFORMANCE)
    MonitorRunner(cfg, SQLiteStore(db), ManualClock(T0 + 2 * HOUR + 5)).run_due()
    store = SQLiteStore(db)
    MonitorRunner(cfg, store, ManualClock(T0 + 3 * HOUR + 5)).run_due()
    assert [len(accuracy_history(store, h)) for h in (0, 1)] == [1, 1]


def test_labels_older_than_labels_within_do_not_recheck(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok", "wrong"])
    store = SQLiteStore(db)
    clock = ManualClock(T0 + 2 * HOUR + 5)
    cfg = job_config(db, checks=["performance"], performance=PERFORMANCE, labels_within="2h")
    runner = MonitorRunner(cfg, store, clock)
    runner.run_due()
    clock.advance(5 * HOUR)  # the windows ended 5h+ ago: beyond labels_within
    add_labels(db, truths[1], clock.now())
    runner.run_due()
    assert accuracy_history(store, 1) == []


def test_the_first_catch_up_is_capped_and_the_skipped_windows_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_monitor_jobs import fill

    db = tmp_path / "a.db"
    fill(db, hours=40, drift_from=100, per_hour=20)
    store = SQLiteStore(db)
    cfg = job_config(db, model="fraud", reference={"since": T0, "until": T0 + HOUR}, catch_up=5)
    with caplog.at_level(logging.INFO, logger="aisre.monitor.jobs"):
        MonitorRunner(cfg, store, ManualClock(T0 + 40 * HOUR + 5)).run_due()
    checked = sorted(s.window_start for _, s in store.signals(name="data_drift_share"))
    assert checked == [T0 + h * HOUR for h in range(35, 40)]
    skipped = [s for _, s in store.signals(name="monitor_windows_skipped")]
    assert [(s.value, s.window_start, s.window_end) for s in skipped] == [(35.0, T0, T0 + 35 * HOUR)]
    assert sum("skipped at start" in r.getMessage() for r in caplog.records) == 1
    MonitorRunner(cfg, store, ManualClock(T0 + 42 * HOUR + 5)).run_due()  # a restart resumes, skips nothing
    assert len(store.signals(name="monitor_windows_skipped")) == 1
    assert len(store.signals(name="data_drift_share")) == 5  # no record after hour 40: windows 40, 41 empty


def test_count_windows_catch_up_reads_only_the_newest_windows(tmp_path: Path) -> None:
    from tests.test_monitor_jobs import fill

    db = tmp_path / "a.db"
    fill(db, hours=10, drift_from=100, per_hour=100)  # 1000 records: ten windows of 100
    store = SQLiteStore(db)
    cfg = job_config(db, model="fraud", reference={"since": T0, "until": T0 + HOUR}, window={"every": 100}, catch_up=3)
    MonitorRunner(cfg, store, ManualClock(T0 + 10 * HOUR + 5)).run_due()
    checked = sorted(s.window_start for _, s in store.signals(name="data_drift_share"))
    assert checked == [T0 + h * HOUR for h in (7, 8, 9)]
    assert [s.value for _, s in store.signals(name="monitor_windows_skipped")] == [7.0]


def test_a_failing_check_records_why_and_the_other_checks_and_windows_go_on(tmp_path: Path) -> None:
    """llm_quality on a tabular model cannot find a response: recorded per window; drift still published."""
    db = tmp_path / "a.db"
    fill_classifier(db, ["ok", "ok", "ok"])
    store = SQLiteStore(db)
    clock = ManualClock(T0 + 2 * HOUR + 5)
    metrics = Metrics()
    runner = MonitorRunner(job_config(db, checks=["data_drift", "llm_quality"]), store, clock, metrics)
    runner.run_due()
    errors = [s for _, s in store.signals(name="monitor_job_error")]
    assert [s.window_start for s in errors] == [T0, T0 + HOUR]
    assert {s.labels["reason"] for s in errors} == {"llm_quality_failed"}
    assert "no LLM response" in errors[0].labels["error"]
    assert sorted(by_window(store, "data_drift_share")) == [0, 1]
    clock.advance(HOUR)
    runner.run_due()  # the schedule goes on
    assert sorted(by_window(store, "data_drift_share")) == [0, 1, 2]
    assert 'reason="llm_quality_failed"' in metrics.render().decode()


def test_loading_the_reference_writes_its_refreshed_at_mark(tmp_path: Path) -> None:
    import pandas as pd

    from aisre.monitor.profiles.reference import Reference

    db = tmp_path / "a.db"
    fill_classifier(db, ["ok", "ok"])
    store = SQLiteStore(db)
    MonitorRunner(job_config(db), store, ManualClock(T0 + 2 * HOUR + 5)).run_due()
    marks = [(ts, s) for ts, s in store.signals(name="reference_refreshed_at")]
    assert [(s.value, s.version, ts) for ts, s in marks] == [(T0 + 2 * HOUR, "v1", T0 + 2 * HOUR + 5)]
    saved = tmp_path / "ref.json"
    Reference.fit(pd.DataFrame({"x1": [0.1 * i for i in range(200)]})).save(saved)
    os.utime(saved, (T0 - 50.0, T0 - 50.0))
    created = Reference.load(saved).settings["created"]
    other = SQLiteStore(tmp_path / "b.db")
    fill_classifier(tmp_path / "b.db", ["ok"])
    MonitorRunner(job_config(tmp_path / "b.db", reference=str(saved)), other, ManualClock(T0 + HOUR + 5)).run_due()
    assert [s.value for _, s in other.signals(name="reference_refreshed_at")] == [pytest.approx(created)]


@pytest.mark.parametrize(
    ("job", "where", "says"),
    [
        ({"checks": ["importanse"]}, "monitors.0.checks", "unknown check 'importanse'"),
        (
            {"checks": ["performance"], "performance": {"metrics": ["acuracy"]}},
            "monitors.0.performance.metrics",
            "acuracy",
        ),
        (
            {"checks": ["performance"], "performance": {"metrics": ["mae"], "min": {"mae": 2}}},
            "monitors.0.performance",
            "under max",
        ),
        (
            {"checks": ["fairness"], "fairness": {"sensitive": ["group"], "metrics": ["parity"]}},
            "monitors.0.fairness.metrics",
            "parity",
        ),
        ({"checks": ["fairness"]}, "monitors.0.fairness", "needs its options"),
        (
            {"checks": ["llm_quality"], "llm_quality": {"max": {"rudeness": 0.1}}},
            "monitors.0.llm_quality.max",
            "rudeness",
        ),
        ({"threshold": {"std": -1}, "method": "psi"}, "monitors.0.threshold", "greater than or equal to 0"),
        ({"threshold": "std"}, "monitors.0.threshold", "bounds a distance"),
        ({"performance": {"metrics": ["f1"]}}, "monitors.0.performance", "not in checks"),
        ({"catch_up": -3}, "monitors.0.catch_up", "greater than or equal to 0"),
        ({"labels_within": "a week"}, "monitors.0.labels_within", "expected a duration"),
    ],
)
def test_bad_check_options_are_refused_by_check_config_at_their_key(
    tmp_path: Path, job: dict[str, Any], where: str, says: str
) -> None:
    from aisre.config import load_config

    monitor = {"name": "credit-watch", "model": "credit", "reference": {"since": T0, "until": T0 + HOUR}}
    path = tmp_path / "aisre.yaml"
    path.write_text(
        yaml.safe_dump({"store": f"sqlite:///{tmp_path / 'a.db'}", "monitors": [{**monitor, "window": "1h", **job}]})
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert where in str(info.value) and says in str(info.value)


def test_check_config_names_a_sensitive_field_the_reference_file_lacks(tmp_path: Path) -> None:
    import pandas as pd
    from typer.testing import CliRunner

    from aisre.cli.main import app
    from aisre.monitor.profiles.reference import Reference

    Reference.fit(pd.DataFrame({"x1": [0.5 * i for i in range(100)]})).save(tmp_path / "ref.json")
    monitor = {
        "name": "credit-watch",
        "model": "credit",
        "reference": str(tmp_path / "ref.json"),
        "window": "1h",
        "checks": ["fairness"],
        "fairness": {"sensitive": ["x1", "gender"]},
    }
    path = tmp_path / "aisre.yaml"
    path.write_text(yaml.safe_dump({"store": f"sqlite:///{tmp_path / 'a.db'}", "monitors": [monitor]}))
    result = CliRunner().invoke(app, ["check-config", "-c", str(path)])
    assert result.exit_code != 0
    assert "monitors.0.fairness.sensitive.1" in result.output and "'gender'" in result.output
    assert "sensitive.0" not in result.output


def test_the_example_config_with_every_check_loads() -> None:
    from aisre.config import load_config

    example = Path(__file__).parent.parent / "examples" / "monitors.yaml"
    cfg = load_config(str(example))
    checks = {c for job in cfg.monitors for c in job.checks}
    assert checks == {
        "data_drift",
        "prediction_drift",
        "performance",
        "estimated_performance",
        "fairness",
        "importance",
        "llm_quality",
    }
