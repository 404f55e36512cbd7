"""Issue #9's scenario: inputs drift, no label ever arrives, and the drift and estimated-accuracy SLIs burn.

A real scikit-learn classifier (breast cancer data, bundled with scikit-learn) is instrumented with
`aisre.instrument` on a ManualClock into a real SQLite store. Two labelled reference hours, then
eight hours of unlabelled traffic; from the fifth traffic hour on, the inputs move towards the
model's decision boundary (see `drifted`: a covariate shift that leaves the rows where the model
scores near 0.5, so its accuracy really falls to about a coin toss). The monitoring jobs
run every hour (data_drift and estimated_performance), and the embedded SLO evaluator judges a
drift SLO, an estimated-accuracy SLO and an availability SLO after each run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import aisre
from aisre.clock import ManualClock
from aisre.config import AisreConfig
from aisre.config.slo import SLOConfig
from aisre.errors import ConfigError
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.slo.alerts import AlertEvaluator
from aisre.slo.evaluate import evaluate
from aisre.store.sqlite import SQLiteStore

HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
REFERENCE_HOURS = 2
TRAFFIC_HOURS = 8
DRIFT_FROM = REFERENCE_HOURS + TRAFFIC_HOURS // 2  # hour index (from T0) of the first drifted hour
PER_HOUR = 120
BATCH = 10  # rows per predict_proba call; one call every 5 minutes


def trained() -> tuple[Pipeline, np.ndarray, np.ndarray, list[str]]:
    data = load_breast_cancer()
    X_train, X_pool, y_train, y_pool = train_test_split(
        data.data, data.target, train_size=0.45, random_state=0, stratify=data.target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(X_train, y_train)
    names = [n.replace(" ", "_") for n in data.feature_names]
    return model, X_pool, y_pool, names


def drifted(model: Pipeline, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A covariate shift in two parts: every feature moves by about 1.5 standard deviations in a direction
    the model ignores (a recalibrated instrument: the logit is unchanged), and each row moves along the
    model's gradient until its logit is small (|z| ~ 0.5), where the model cannot tell the classes apart."""
    scaler: StandardScaler = model[0]
    w_scaled = model[-1].coef_[0]
    w = w_scaled / scaler.scale_  # d logit / d raw feature
    z = model.decision_function(X)
    target = rng.normal(0.0, 0.5, size=len(X))
    offset = 1.5 * np.ones_like(w_scaled) - (1.5 * w_scaled.sum() / (w_scaled @ w_scaled)) * w_scaled  # orthogonal to w
    return X + ((target - z) / (w @ w))[:, None] * w[None, :] + (offset * scaler.scale_)[None, :]


def traffic(db: Path) -> dict[str, Any]:
    """Writes the reference hours (labelled) and the traffic hours (no labels); returns what the test needs."""
    model, X_pool, y_pool, names = trained()
    rng = np.random.default_rng(3)
    clock = ManualClock(T0)
    accuracy: dict[int, float] = {}
    with aisre.Monitor("cancer", "v1", store=f"sqlite:///{db}", clock=clock) as monitor:
        clf = aisre.instrument(model, monitor=monitor, feature_names=names)
        labels: list[tuple[str, Any]] = []
        for hour in range(REFERENCE_HOURS + TRAFFIC_HOURS):
            rows = rng.integers(0, len(X_pool), size=PER_HOUR)
            X, y = X_pool[rows], y_pool[rows]
            if hour >= DRIFT_FROM:
                X = drifted(model, X, rng)
            correct = 0
            for b in range(0, PER_HOUR, BATCH):
                proba = clf.predict_proba(X[b : b + BATCH])
                correct += int((proba.argmax(axis=1) == y[b : b + BATCH]).sum())
                if hour < REFERENCE_HOURS:  # only the reference period is ever labelled
                    labels += list(zip(clf.last_record_ids, y[b : b + BATCH].tolist(), strict=True))
                clock.advance(HOUR / (PER_HOUR / BATCH))
            accuracy[hour] = correct / PER_HOUR
        monitor.flush()
        monitor.label_many(labels, ts=T0 + REFERENCE_HOURS * HOUR)
        monitor.flush()
    return {"accuracy": accuracy}


def monitors(db: Path, **job: Any) -> AisreConfig:
    base = {
        "name": "cancer-watch",
        "model": "cancer",
        "reference": {"since": T0, "until": T0 + REFERENCE_HOURS * HOUR},
        "window": "1h",
        "checks": ["data_drift", "estimated_performance"],
        "min": 0.9,
        "min_rows": 50,
    }
    return AisreConfig.model_validate({"store": f"sqlite:///{db}", "monitors": [{**base, **job}]})


# Slices shorter than the job's window: each hourly signal judges twelve of them, so the page alert's
# 5m/1h windows see the hour that just ended (with 1h slices they would see only the empty current one).
SLOS = [
    SLOConfig(name="cancer-drift", model="cancer", objective=0.99, sli={"kind": "drift"}, timeslice="5m"),
    SLOConfig(
        name="cancer-estimated-accuracy",
        model="cancer",
        objective=0.99,
        sli={"kind": "estimated_quality", "metric": "accuracy", "min": 0.9},
        timeslice="5m",
    ),
    SLOConfig(name="cancer-availability", model="cancer", objective=0.999, sli={"kind": "availability"}),
]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The whole run, hour by hour: the jobs, then the SLO evaluation, after each traffic hour."""
    db = tmp_path_factory.mktemp("nolabels") / "aisre.db"
    out = traffic(db)
    store = SQLiteStore(db)
    clock = ManualClock(T0 + REFERENCE_HOURS * HOUR)
    runner = MonitorRunner(monitors(db), store, clock)
    evaluators = {slo.name: AlertEvaluator(slo, clock) for slo in SLOS}
    out["reports"] = {}
    for hour in range(REFERENCE_HOURS, REFERENCE_HOURS + TRAFFIC_HOURS):
        clock.advance(HOUR)  # now: the end of `hour` (+ the job's 1 s delay below)
        clock.advance(5)
        runner.run_due()
        assert runner.last_errors == []
        out["reports"][hour] = {r.name: r for r in evaluate(SLOS, store, clock, evaluators)}
    out["store"] = store
    return out


def by_window(store: SQLiteStore, name: str) -> dict[int, Any]:
    return {
        int((s.window_start - T0) // HOUR): s
        for _, s in store.signals(model="cancer", name=name)
        if s.labels.get("monitor") == "cancer-watch"
    }


def test_the_drifted_inputs_really_cost_accuracy(scenario: dict[str, Any]) -> None:
    accuracy = scenario["accuracy"]
    assert min(accuracy[h] for h in range(DRIFT_FROM)) > 0.9
    assert max(accuracy[h] for h in range(DRIFT_FROM, REFERENCE_HOURS + TRAFFIC_HOURS)) < 0.8


def test_drift_and_estimated_accuracy_are_breached_for_the_drifted_hours_only(scenario: dict[str, Any]) -> None:
    store = scenario["store"]
    hours = range(REFERENCE_HOURS + TRAFFIC_HOURS)
    drift = by_window(store, "dataset_drift")
    estimated = by_window(store, "estimated_accuracy")
    assert {h: s.breached for h, s in drift.items()} == {h: h >= DRIFT_FROM for h in hours}
    assert {h: s.breached for h, s in estimated.items()} == {h: h >= DRIFT_FROM for h in hours}
    assert all(s.threshold == 0.9 and s.labels["method"] == "cbpe" for s in estimated.values())
    before = [estimated[h].value for h in range(DRIFT_FROM)]
    assert max(estimated[h].value for h in range(DRIFT_FROM, REFERENCE_HOURS + TRAFFIC_HOURS)) < min(before)
    assert store.labels_for([r.id for r in store.records()]).keys() <= {
        r.id for r in store.records() if r.ts < T0 + REFERENCE_HOURS * HOUR
    }


def test_both_slis_burn_only_after_the_drift_and_availability_stays_healthy(scenario: dict[str, Any]) -> None:
    reports = scenario["reports"]
    for hour, report in reports.items():
        drift, estimated, availability = (
            report["cancer-drift"],
            report["cancer-estimated-accuracy"],
            report["cancer-availability"],
        )
        drifted = hour >= DRIFT_FROM
        for r in (drift, estimated):
            assert r.problem is None and r.budget is not None
            assert (r.budget.consumed > 0) is drifted, (r.name, hour)
            assert r.alerts["page"] == ("firing" if drifted else "inactive"), (r.name, hour)
        assert availability.budget is not None and availability.budget.consumed == 0
        assert availability.alerts == {"page": "inactive", "ticket": "inactive"}
    last = reports[REFERENCE_HOURS + TRAFFIC_HOURS - 1]
    assert last["cancer-drift"].budget.total == (REFERENCE_HOURS + TRAFFIC_HOURS) * 12  # 5-minute slices
    assert last["cancer-drift"].sli == pytest.approx(DRIFT_FROM / (REFERENCE_HOURS + TRAFFIC_HOURS))


def test_a_reference_without_labels_is_a_recorded_job_error_not_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "aisre.db"
    traffic(db)
    store = SQLiteStore(db)
    cfg = monitors(db, reference={"since": T0 + 3 * HOUR, "until": T0 + 4 * HOUR})  # unlabelled hours
    runner = MonitorRunner(cfg, store, ManualClock(T0 + 10 * HOUR + 5))
    runner.run_due()
    errors = [s for _, s in store.signals(name="monitor_job_error")]
    assert errors and {s.labels["reason"] for s in errors} == {"bad_reference"}
    assert "none of its" in errors[0].labels["error"] and "label" in errors[0].labels["error"]
    assert by_window(store, "estimated_accuracy") == {}


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({"metric": "brier"}, "unknown metric 'brier'"),
        ({"reference": "ref.json"}, "needs a reference of stored records with labels"),
        ({"checks": ["data_drift"]}, "metric and min apply to the estimated_performance check"),
    ],
)
def test_bad_estimated_performance_settings_are_refused_at_their_key(
    tmp_path: Path, job: dict[str, Any], expected: str
) -> None:
    with pytest.raises((ConfigError, ValueError), match="monitors") as info:
        monitors(tmp_path / "a.db", **job)
    assert expected in str(info.value)
