"""Each monitoring-job check fires on a degraded window and not on a healthy one (real SQLite store,
MonitorRunner on a ManualClock), and the drift/performance thresholds drawn from the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aisre.clock import ManualClock
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.store.sqlite import SQLiteStore
from aisre.telemetry.metrics import Metrics
from tests.monitor_jobs_helpers import (
    HOUR,
    T0,
    add_labels,
    by_window,
    fill_chat,
    fill_classifier,
    job_config,
)


def run(db: Path, hours: int, metrics: Metrics | None = None, **job: object) -> tuple[SQLiteStore, MonitorRunner]:
    store = SQLiteStore(db)
    runner = MonitorRunner(job_config(db, **job), store, ManualClock(T0 + hours * HOUR + 5), metrics)
    runner.run_due()
    assert runner.last_errors == []
    return store, runner


def test_performance_fires_on_the_window_whose_labels_say_the_model_is_wrong(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok", "ok", "ok", "wrong", "ok"])
    add_labels(db, [p for h in truths for p in truths[h]], T0 + 5 * HOUR)
    metrics = Metrics()
    performance = {"metrics": ["accuracy", "recall"], "min": {"accuracy": 0.8, "recall": 0.7}}
    store, _ = run(db, 5, metrics, checks=["performance"], performance=performance)
    accuracy = by_window(store, "accuracy")
    assert {h: s.breached for h, s in accuracy.items()} == {0: False, 1: False, 2: False, 3: True, 4: False}
    assert accuracy[3].value < 0.65 < 0.9 < accuracy[2].value and accuracy[3].threshold == 0.8
    assert by_window(store, "recall")[3].breached
    text = metrics.render().decode()
    assert 'aisre_accuracy_breached{metric="accuracy",model="credit",monitor="credit-watch"' in text


def test_a_performance_band_from_the_reference_catches_the_drop_and_spares_healthy_hours(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok"] * 6 + ["ok", "wrong"])
    add_labels(db, [p for h in truths for p in truths[h]], T0 + 8 * HOUR)
    reference = {"since": T0, "until": T0 + 6 * HOUR}  # six reference hours: six chunks of a window's rows
    performance = {"metrics": ["accuracy"], "threshold": {"std": 3}}
    store, _ = run(db, 8, checks=["performance"], performance=performance, reference=reference)
    accuracy = by_window(store, "accuracy")
    assert not accuracy[6].breached and accuracy[7].breached
    assert 0.85 < accuracy[7].threshold < accuracy[6].value  # mean - 3 std of the reference hours' accuracy


def test_fairness_fires_when_one_group_is_selected_far_more_often(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill_classifier(db, ["ok", "ok", "ok", "unfair"])
    fairness = {"sensitive": ["group"], "metrics": ["demographic_parity_difference", "disparate_impact_ratio"]}
    store, _ = run(db, 4, checks=["fairness"], fairness={**fairness, "max_gap": 0.2})
    gap = by_window(store, "demographic_parity_difference")
    assert {h: s.breached for h, s in gap.items()} == {0: False, 1: False, 2: False, 3: True}
    assert gap[3].value > 0.4 and gap[3].labels["sensitive_feature"] == "group"
    ratio = by_window(store, "disparate_impact_ratio")
    assert ratio[3].breached and not ratio[2].breached and ratio[3].threshold == 0.8


def test_importance_shift_fires_when_the_model_starts_leaning_on_another_input(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    db = tmp_path / "a.db"
    fill_classifier(db, ["ok", "ok", "ok", "lean_x3"])
    store, _ = run(db, 4, checks=["data_drift", "importance"], importance={"features": ["x1", "x2", "x3"]})
    rho = by_window(store, "feature_importance_rank_correlation", method="spearman")
    assert rho[2].value > 0.9 and not rho[2].breached
    assert rho[3].value < 0 and rho[3].breached
    share = by_window(store, "feature_importance_share", feature="x1")
    assert share[3].breached and not share[2].breached
    impact = by_window(store, "drift_impact")  # inputs did not drift: the drifted share of importance is 0
    assert impact[3].value == 0 and not impact[3].breached


def test_llm_quality_fires_on_the_hour_full_of_refusals(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill_chat(db, ["ok", "ok", "refusing"])
    llm = {"max": {"refusal_rate": 0.05, "json_invalid_rate": 0.05}, "expect_json": True}
    job = {"name": "credit-watch", "model": "assistant", "checks": ["llm_quality"], "llm_quality": llm}
    store, _ = run(db, 3, **job, reference={"since": T0, "until": T0 + HOUR})
    refusals = by_window(store, "llm_refusal_rate")
    assert {h: s.breached for h, s in refusals.items()} == {0: False, 1: False, 2: True}
    assert refusals[2].value > 0.2 and refusals[2].threshold == 0.05
    assert by_window(store, "llm_json_invalid_rate")[2].breached
    assert not by_window(store, "llm_json_invalid_rate")[1].breached


def test_a_std_drift_threshold_uses_reference_chunks_of_a_windows_rows(tmp_path: Path) -> None:
    """NannyML's rule in a job: the threshold is the one aisre.drift computes with chunks of the
    reference's mean rows per window (600 here), and only the shifted window breaches it."""
    from aisre.monitor.drift import drift
    from aisre.monitor.drift.thresholds import StdThreshold
    from aisre.monitor.jobs.checks import input_columns
    from aisre.store.base import RecordFilter
    from tests.test_monitor_jobs import fill

    db = tmp_path / "a.db"
    fill(db, hours=8, drift_from=7, per_hour=600)  # model fraud/v1, amount shifted from hour 7
    job = {
        "name": "credit-watch",
        "model": "fraud",
        "reference": {"since": T0, "until": T0 + 6 * HOUR},
        "checks": ["data_drift"],
        "method": "jensenshannon",
        "threshold": "std",
    }
    store, _ = run(db, 8, **job)
    scores = by_window(store, "data_drift_score", feature="amount")
    assert not scores[6].breached and scores[7].breached
    ref = input_columns(store.records(RecordFilter("fraud", "v1", T0, T0 + 6 * HOUR)))
    cur = input_columns(store.records(RecordFilter("fraud", "v1", T0 + 6 * HOUR, T0 + 7 * HOUR)))
    direct = drift(ref, cur, method="jensenshannon", threshold=StdThreshold(), chunk_size=600)
    assert scores[6].threshold == pytest.approx(direct.columns["amount"].threshold)
    assert np.isfinite(scores[6].threshold) and scores[6].value < scores[6].threshold < scores[7].value


def test_a_count_window_std_threshold_chunks_the_reference_by_the_window_size(tmp_path: Path) -> None:
    from aisre.monitor.drift import drift
    from aisre.monitor.drift.thresholds import StdThreshold
    from aisre.monitor.jobs.checks import input_columns
    from aisre.store.base import RecordFilter
    from tests.test_monitor_jobs import fill

    db = tmp_path / "a.db"
    fill(db, hours=5, drift_from=4, per_hour=200)
    job = {
        "name": "credit-watch",
        "model": "fraud",
        "reference": {"since": T0, "until": T0 + 3 * HOUR},
        "window": {"every": 150},
        "checks": ["data_drift"],
        "method": "psi",
        "threshold": {"std": 4},
    }
    store, _ = run(db, 5, **job)
    scores = sorted(
        (s for _, s in store.signals(name="data_drift_score") if s.labels.get("monitor") == "credit-watch"),
        key=lambda s: s.window_start,
    )
    ref = input_columns(store.records(RecordFilter("fraud", "v1", T0, T0 + 3 * HOUR)))
    first = input_columns(store.records(RecordFilter("fraud", "v1", scores[0].window_start, scores[0].window_end)))
    assert len(first["amount"]) == 150
    direct = drift(ref, first, method="psi", threshold=StdThreshold(4), chunk_size=150)
    assert scores[0].threshold == pytest.approx(direct.columns["amount"].threshold)
    assert scores[-1].breached and scores[-1].value > 10 * scores[-1].threshold  # the shifted records


def test_an_estimated_accuracy_band_from_the_reference_flags_the_uncertain_hour(tmp_path: Path) -> None:
    """CBPE with `threshold: {std: k}`: the band of the labelled reference's hourly chunks, no labels after it."""
    db = tmp_path / "a.db"
    truths = fill_classifier(db, ["ok"] * 6 + ["ok", "uncertain"], calibrated=True)
    add_labels(db, [p for h in range(6) for p in truths[h]], T0 + 6 * HOUR)
    job = {
        "checks": ["estimated_performance"],
        "estimated_performance": {"metric": "accuracy", "threshold": {"std": 3}},
        "reference": {"since": T0, "until": T0 + 6 * HOUR},
    }
    store, _ = run(db, 8, **job)
    estimated = by_window(store, "estimated_accuracy")
    assert not estimated[6].breached and estimated[7].breached
    assert estimated[7].value < estimated[7].threshold < estimated[6].value


def test_a_job_waits_for_its_stored_reference_range_to_end_before_profiling_it(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fill_classifier(db, ["ok"] * 4)
    store = SQLiteStore(db)
    config = job_config(db, checks=["data_drift"])  # reference: the first two hours
    early = MonitorRunner(config, store, ManualClock(T0 + 1.5 * HOUR))
    assert early.run_due() == [] and early.last_errors == []  # the range is still being written
    later = MonitorRunner(config, store, ManualClock(T0 + 4 * HOUR + 5))
    later.run_due()
    assert later.last_errors == []
    checked = sorted(int((s.window_start - T0) // HOUR) for _, s in store.signals(name="window_rows"))
    assert checked == [0, 1, 2, 3]  # nothing skipped while waiting
