"""Fairness, freshness, mse/r2 and pos_label SLIs on real SQLite stores: they burn budget when they should."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fairlearn.metrics as flm
import numpy as np
import pytest
from sklearn import metrics as skm

import aisre
from aisre.clock import ManualClock
from aisre.config import load_config
from aisre.config.slo import FAIRNESS_METRICS, SLOConfig
from aisre.monitor.fairness.groups import SUMMARY
from aisre.slo.evaluate import evaluate
from aisre.slo.events import NotEvaluable, Window, sli_series
from aisre.slo.marks import MODEL_TRAINED_AT, REFERENCE_REFRESHED_AT, mark
from aisre.slo.window_slis import fairness_slices, freshness_slices
from aisre.store import SQLiteStore
from tests.slo_helpers import HOUR, T0

ROOT = Path(__file__).resolve().parents[1]
DAY = 24 * HOUR


def slo(sli: dict[str, Any], objective: float = 0.9, **extra: Any) -> SLOConfig:
    extra.setdefault("timeslice", "1h")
    return SLOConfig(
        name=extra.pop("name", "s"), model=extra.pop("model", "fraud"), objective=objective, sli=sli, **extra
    )


def hourly(n: int, start: float = T0) -> Window:
    return Window(start, start + n * HOUR, HOUR)


# -- fairness --------------------------------------------------------------------------------
def loan_hours(db: Path, rates: list[tuple[float, float]], labelled: list[bool] | None = None) -> list[dict[str, list]]:
    """One hour of 100 decisions per (selection rate of f, of m); returns each hour's columns.
    Labels (half positive per group, independent of the decision) arrive for the hours `labelled` says."""
    hours = []
    with aisre.Monitor("loans", "v1", store=f"sqlite:///{db}", clock=ManualClock(T0)) as monitor:
        for h, (rate_f, rate_m) in enumerate(rates):
            cols: dict[str, list] = {"sex": [], "pred": [], "truth": []}
            pairs = []
            for i in range(100):
                sex = "f" if i % 2 else "m"
                j = i // 2  # 0..49 within the group
                pred = int(j < 50 * (rate_f if sex == "f" else rate_m))
                truth = int(j % 2 == 0 or j > 45)
                rid = monitor.record({"sex": sex, "income": j}, pred, latency_s=0.01, ts=T0 + h * HOUR + i * 30)
                cols["sex"].append(sex), cols["pred"].append(pred), cols["truth"].append(truth)
                pairs.append((rid, truth))
            monitor.flush()
            if labelled is None or labelled[h]:
                monitor.label_many(pairs, ts=T0 + (h + 1) * HOUR)
            hours.append(cols)
    return hours


def test_demographic_parity_slices_burn_only_in_the_biased_hour_and_equal_fairlearn(db_path: Path) -> None:
    hours = loan_hours(db_path, [(0.5, 0.5), (0.5, 0.46), (0.8, 0.2)])
    fair = slo(
        {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.1}, model="loans"
    )
    store = SQLiteStore(db_path)
    good, total = fairness_slices(fair, store, hourly(3))
    assert total.tolist() == [1, 1, 1] and good.tolist() == [1, 1, 0]
    (report,) = evaluate([fair], store, ManualClock(T0 + 3 * HOUR))
    assert report.sli == pytest.approx(2 / 3)
    assert report.budget is not None and report.budget.remaining < 0  # 1 bad slice in 3 over a 10% budget
    # The value judged is Fairlearn's: a bound just at it passes, a hair under it fails.
    for h, cols in enumerate(hours):
        value = flm.demographic_parity_difference(cols["truth"], cols["pred"], sensitive_features=cols["sex"])
        at = slo(
            {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "inputs.sex", "max": value},
            model="loans",
        )
        under = slo(
            {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": value - 1e-9},
            model="loans",
        )
        assert fairness_slices(at, store, hourly(1, T0 + h * HOUR))[0].tolist() == [1.0]
        assert fairness_slices(under, store, hourly(1, T0 + h * HOUR))[0].tolist() == [0.0]


def test_equalized_odds_slices_need_labels_and_equal_fairlearn(db_path: Path) -> None:
    hours = loan_hours(db_path, [(0.5, 0.5), (0.8, 0.2), (0.8, 0.2)], labelled=[True, True, False])
    values = [flm.equalized_odds_difference(c["truth"], c["pred"], sensitive_features=c["sex"]) for c in hours[:2]]
    assert 0 < values[1] and values[0] < values[1]
    eo = {"kind": "fairness", "metric": "equalized_odds_difference", "sensitive": "sex"}
    store = SQLiteStore(db_path)
    good, total = fairness_slices(slo({**eo, "max": values[1]}, model="loans"), store, hourly(3))
    assert total.tolist() == [1, 1, 0]  # the unlabelled hour is not counted
    assert good.tolist() == [1, 1, 0]
    good, _ = fairness_slices(slo({**eo, "max": values[1] - 1e-9}, model="loans"), store, hourly(3))
    assert good.tolist() == [float(values[0] <= values[1] - 1e-9), 0, 0]
    # demographic parity needs no labels: the unlabelled hour counts
    dp = slo(
        {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.1}, model="loans"
    )
    assert fairness_slices(dp, store, hourly(3))[1].tolist() == [1, 1, 1]


def test_a_slice_with_one_group_or_no_sensitive_value_is_not_counted(db_path: Path) -> None:
    with aisre.Monitor("loans", "v1", store=f"sqlite:///{db_path}", clock=ManualClock(T0)) as monitor:
        for i in range(20):
            monitor.record({"sex": "f"}, i % 2, ts=T0 + i)  # hour 0: one group only
            monitor.record({"age": 30}, i % 2, ts=T0 + HOUR + i)  # hour 1: no sex field
            monitor.record({"sex": ["f", "m"][i % 2]}, 1, ts=T0 + 2 * HOUR + i)  # hour 2: two groups, no gap
    dp = slo(
        {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.1}, model="loans"
    )
    good, total = fairness_slices(dp, SQLiteStore(db_path), hourly(3))
    assert total.tolist() == [0, 0, 1] and good.tolist() == [0, 0, 1]


def test_fairness_with_a_string_positive_label_and_a_ratio_floor(db_path: Path) -> None:
    names = np.array(["legit", "fraud"], dtype=object)
    sex, preds = [], []
    with aisre.Monitor("loans", "v1", store=f"sqlite:///{db_path}", clock=ManualClock(T0)) as monitor:
        for i in range(100):
            s, flagged = ("f" if i % 2 else "m"), int((i // 2) < (30 if i % 2 else 20))
            monitor.record({"sex": s}, names[flagged], ts=T0 + i)
            sex.append(s), preds.append(flagged)
    expected = flm.demographic_parity_ratio(preds, preds, sensitive_features=sex)  # selection of "fraud": 0.4 / 0.6
    assert expected == pytest.approx(40 / 60)
    base = {"kind": "fairness", "metric": "demographic_parity_ratio", "sensitive": "sex", "pos_label": "fraud"}
    store = SQLiteStore(db_path)
    assert fairness_slices(slo({**base, "min": expected}, model="loans"), store, hourly(1))[0].tolist() == [1]
    assert fairness_slices(slo({**base, "min": expected + 1e-9}, model="loans"), store, hourly(1))[0].tolist() == [0]
    # with the default positive label (1) "legit"/"fraud" has no positive class: no selection, no ratio, not counted
    with pytest.raises(NotEvaluable, match="pos_label"):  # the default positive class (1) is not among them
        fairness_slices(slo({**base, "pos_label": None, "min": 0.8}, model="loans"), store, hourly(1))


def test_config_fairness_metrics_are_the_monitors() -> None:
    assert FAIRNESS_METRICS == SUMMARY


# -- freshness -------------------------------------------------------------------------------
def serve(db: Path, hours: int, model: str = "fraud", version: str = "v1") -> None:
    with aisre.Monitor(model, version, store=f"sqlite:///{db}", clock=ManualClock(T0)) as monitor:
        for h in range(hours):
            monitor.record({"amount": h}, 0, latency_s=0.01, ts=T0 + h * HOUR + 10)


def test_freshness_burns_once_the_training_is_older_than_max_age_and_recovers_on_retraining(db_path: Path) -> None:
    serve(db_path, 72)
    clock = ManualClock(T0 + 1)
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}", clock=clock) as monitor:
        monitor.mark_trained(at=T0 - HOUR)  # recorded as the first hour begins: trained an hour before
        clock.advance(48 * HOUR)
        monitor.mark_trained(at=T0 + 47 * HOUR)
    fresh = slo({"kind": "freshness", "max_age": "24h"}, objective=0.99)
    good, total = freshness_slices(fresh, SQLiteStore(db_path), hourly(72))
    ends = T0 + HOUR * np.arange(1, 73)
    newest = np.where(ends >= T0 + 48 * HOUR + 1, T0 + 47 * HOUR, T0 - HOUR)  # retrained mark recorded at 48h+1s
    assert total.tolist() == [1.0] * 72
    assert good.tolist() == (ends - newest <= DAY).astype(float).tolist()
    assert good[:23].all() and not good[23:48].any() and good[48:71].all() and not good[71]
    (report,) = evaluate([fresh], SQLiteStore(db_path), ManualClock(T0 + 72 * HOUR))
    assert report.problem is None
    assert report.sli == pytest.approx(good.sum() / 72)
    assert report.burn_rates["1h"] == pytest.approx(100)  # the last slice is stale again


def test_freshness_without_marks_is_bad_once_the_model_serves_and_uncounted_before(db_path: Path) -> None:
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}", clock=ManualClock(T0)) as monitor:
        monitor.record({"amount": 1}, 0, ts=T0 + 2 * HOUR + 5)
    fresh = slo({"kind": "freshness", "max_age": "24h"})
    good, total = freshness_slices(fresh, SQLiteStore(db_path), hourly(4))
    assert total.tolist() == [0, 0, 1, 1] and good.tolist() == [0, 0, 0, 0]
    # the same from a window that starts after the first record (the cheap "any record before" probe)
    good, total = freshness_slices(fresh, SQLiteStore(db_path), hourly(2, T0 + 3 * HOUR))
    assert total.tolist() == [1, 1] and good.tolist() == [0, 0]


def test_a_mark_counts_from_when_it_was_recorded_not_from_the_time_it_names(db_path: Path) -> None:
    serve(db_path, 4)
    store = SQLiteStore(db_path)
    mark(store, "fraud", MODEL_TRAINED_AT, T0 - HOUR, now=T0 + 2 * HOUR + 1, version="v1")
    good, total = freshness_slices(slo({"kind": "freshness", "max_age": "1d"}), store, hourly(4))
    assert total.tolist() == [1, 1, 1, 1] and good.tolist() == [0, 0, 1, 1]


def test_freshness_source_and_version_choose_the_marks(db_path: Path) -> None:
    serve(db_path, 2)
    store = SQLiteStore(db_path)
    mark(store, "fraud", REFERENCE_REFRESHED_AT, T0, now=T0)  # every version ("*")
    mark(store, "fraud", MODEL_TRAINED_AT, T0, now=T0, version="v2")
    w = hourly(2)

    def judged(**sli: Any) -> list[float]:
        return freshness_slices(slo({"kind": "freshness", "max_age": "1d", **sli}, version="v1"), store, w)[0].tolist()

    assert judged() == [1, 1]
    assert judged(source="reference") == [1, 1]
    assert judged(source="trained") == [0, 0]  # v2's training says nothing about v1
    v2 = slo({"kind": "freshness", "max_age": "1d", "source": "trained"}, version="v2")
    assert freshness_slices(v2, store, w)[0].tolist() == [1, 1]


def test_the_issue_data_freshness_example_evaluates(db_path: Path) -> None:
    config = load_config(ROOT / "examples" / "slos.yaml")
    (freshness,) = [s for s in config.slos if s.sli.kind == "freshness"]
    serve(db_path, 30)
    store = SQLiteStore(db_path)
    mark(store, "fraud", MODEL_TRAINED_AT, T0, now=T0 + 1)
    (report,) = evaluate([freshness], store, ManualClock(T0 + 30 * HOUR))
    assert report.problem is None
    assert report.budget is not None and report.budget.total == 30 and report.budget.good == 24


def test_mark_refuses_unknown_names_bad_times_and_stores_without_signals(tmp_path: Path) -> None:
    from aisre.errors import InvalidParameterError, StoreError
    from aisre.store.jsonl import JsonlSink

    store = SQLiteStore(tmp_path / "a.db")
    with pytest.raises(InvalidParameterError, match="model_trained_at"):
        mark(store, "fraud", "trained", T0, now=T0)
    with pytest.raises(InvalidParameterError, match="Unix time"):
        mark(store, "fraud", MODEL_TRAINED_AT, "yesterday", now=T0)
    with pytest.raises(StoreError, match="SQLite"):
        mark(JsonlSink(tmp_path / "log.jsonl"), "fraud", MODEL_TRAINED_AT, T0, now=T0)


# -- quality: mse, r2 and pos_label ----------------------------------------------------------
def test_r2_and_mse_quality_slices_equal_scikit_learn_and_burn_in_the_noisy_hour(db_path: Path) -> None:
    rng = np.random.default_rng(0)
    hours = []
    with aisre.Monitor("price", "v1", store=f"sqlite:///{db_path}", clock=ManualClock(T0)) as monitor:
        for h, noise in enumerate([0.1, 3.0]):
            y = rng.normal(10, 2, 200)
            yhat = y + rng.normal(0, noise, 200)
            ids = [
                monitor.record({"x": float(t)}, float(p), ts=T0 + h * HOUR + i)
                for i, (t, p) in enumerate(zip(y, yhat, strict=True))
            ]
            monitor.flush()
            monitor.label_many(zip(ids, y.tolist(), strict=True), ts=T0 + (h + 1) * HOUR)
            hours.append((y, yhat))
    store = SQLiteStore(db_path)
    r2 = [skm.r2_score(y, yhat) for y, yhat in hours]
    mse = [skm.mean_squared_error(y, yhat) for y, yhat in hours]
    assert r2[0] > 0.9 > r2[1]
    (r2_report, mse_report) = evaluate(
        [
            slo({"kind": "quality", "metric": "r2", "min": 0.9}, name="r2", model="price"),
            slo({"kind": "quality", "metric": "mse", "max": 1.0}, name="mse", model="price"),
        ],
        store,
        ManualClock(T0 + 2 * HOUR),
    )
    assert r2_report.problem is None and r2_report.sli == 0.5 and mse_report.sli == 0.5
    for h in range(2):  # the judged values are scikit-learn's (a bound at the value passes, a hair beyond fails)
        w = hourly(1, T0 + h * HOUR)
        at = slo({"kind": "quality", "metric": "r2", "min": r2[h]}, model="price")
        over = slo({"kind": "quality", "metric": "r2", "min": r2[h] + 1e-9}, model="price")
        assert sli_series(at, store, w.end_s, HOUR).good.sum() == 1
        assert sli_series(over, store, w.end_s, HOUR).good.sum() == 0
        mse_at = slo({"kind": "quality", "metric": "mse", "max": mse[h] * (1 + 1e-12)}, model="price")
        mse_under = slo({"kind": "quality", "metric": "mse", "max": mse[h] * (1 - 1e-9)}, model="price")
        assert sli_series(mse_at, store, w.end_s, HOUR).good.sum() == 1
        assert sli_series(mse_under, store, w.end_s, HOUR).good.sum() == 0


def test_recall_with_a_string_positive_label_equals_scikit_learn(db_path: Path) -> None:
    truth = ["fraud"] * 10 + ["legit"] * 10
    hours = [truth, ["fraud"] * 6 + ["legit"] * 14]  # hour 0 catches every fraud, hour 1 six in ten
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}", clock=ManualClock(T0)) as monitor:
        for h, preds in enumerate(hours):
            ids = [monitor.record({"i": i}, p, ts=T0 + h * HOUR + i) for i, p in enumerate(preds)]
            monitor.flush()
            monitor.label_many(zip(ids, truth, strict=True), ts=T0 + 2 * HOUR)
    store = SQLiteStore(db_path)
    expected = [skm.recall_score(truth, p, pos_label="fraud") for p in hours]
    assert expected == [1.0, 0.6]
    recall = slo({"kind": "quality", "metric": "recall", "min": 0.9, "pos_label": "fraud"}, objective=0.99)
    (report,) = evaluate([recall], store, ManualClock(T0 + 2 * HOUR))
    assert report.problem is None and report.sli == 0.5
    # "legit" as the positive class: recall 1.0 and 14/10 -> 10/10, sklearn agrees
    legit = [skm.recall_score(truth, p, pos_label="legit") for p in hours]
    as_legit = slo({"kind": "quality", "metric": "recall", "min": min(legit), "pos_label": "legit"}, objective=0.99)
    assert evaluate([as_legit], store, ManualClock(T0 + 2 * HOUR))[0].sli == 1.0
    precision = slo({"kind": "quality", "metric": "precision", "min": 1.0, "pos_label": "fraud"}, objective=0.99)
    assert skm.precision_score(truth, hours[1], pos_label="fraud") == 1.0
    assert evaluate([precision], store, ManualClock(T0 + 2 * HOUR))[0].sli == 1.0
