"""Performance with late labels: equal to scikit-learn, honest intervals, defined degenerate cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn import metrics as skm

import aisre
import aisre.store
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.performance import intervals as ci
from aisre.monitor.performance.realised import labeled_window, performance, performance_over_time

TOL = 1e-12


def _binary_data(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    if seed % 2:
        score = np.round(score, 1)  # many ties: AUC must count them half, like sklearn
    return y, (score >= 0.5).astype(int), score


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binary_metrics_equal_scikit_learn(seed):
    y, pred, score = _binary_data(seed)
    r = performance(y, pred, score)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, score),
        "log_loss": skm.log_loss(y, score),
    }
    for name, value in expected.items():
        assert r[name].value == pytest.approx(value, abs=TOL), name
        assert r[name].lower <= r[name].value <= r[name].upper, name
    assert {r[m].method for m in ("accuracy", "precision", "recall")} == {"wilson"}
    assert r["roc_auc"].method == "delong" and r["f1"].method == "bootstrap"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 10)), min_size=1, max_size=60),
)
def test_binary_metrics_equal_scikit_learn_on_any_small_sample(rows):
    y = np.array([r[0] for r in rows], dtype=int)
    pred = np.array([r[1] for r in rows], dtype=int)
    score = np.array([r[2] / 10 for r in rows])
    r = performance(y, pred, score, n_bootstrap=20)
    nan0 = {"zero_division": np.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, **nan0),
            "recall": skm.recall_score(y, pred, **nan0),
            "f1": skm.f1_score(y, pred, **nan0),
            "roc_auc": skm.roc_auc_score(y, score) if 0 < y.sum() < len(y) else np.nan,
            "log_loss": skm.log_loss(y, score, labels=[0, 1]),
        }
    for name, value in expected.items():
        assert r[name].value == pytest.approx(value, abs=TOL, nan_ok=True), name


def test_binary_labels_as_strings_with_named_positive_class():
    y, pred, score = _binary_data(5)
    names = np.array(["no", "yes"], dtype=object)
    r = performance(names[y], names[pred], np.column_stack([1 - score, score]), pos_label="yes", classes=["no", "yes"])
    assert r["recall"].value == pytest.approx(skm.recall_score(y, pred), abs=TOL)
    assert r["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, score), abs=TOL)
    # store rows mix 1, "1" and 1.0 for the same class
    mixed = np.array([1, "1", 1.0, 0, "0", 0.0], dtype=object)
    assert performance(mixed, [1, 1, 1, 0, 0, 0]).metrics["accuracy"].value == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_macro_metrics_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n, k = 600, 4
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    pred[pred == 3] = 2  # class 3 never predicted: its precision is undefined
    r = performance(y, pred, proba, "multiclass", n_bootstrap=200)
    nan0 = {"average": "macro", "zero_division": np.nan}
    assert r["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert r["precision"].value == pytest.approx(skm.precision_score(y, pred, **nan0), abs=TOL)
    assert r["recall"].value == pytest.approx(skm.recall_score(y, pred, **nan0), abs=TOL)
    assert r["f1"].value == pytest.approx(skm.f1_score(y, pred, **nan0), abs=TOL)
    assert r["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=TOL)
    assert r["log_loss"].value == pytest.approx(skm.log_loss(y, proba), abs=TOL)
    # without y_pred the prediction is the arg-max of the scores
    r2 = performance(y, None, proba, "multiclass", metrics=["accuracy"])
    assert r2["accuracy"].value == pytest.approx(skm.accuracy_score(y, proba.argmax(1)), abs=TOL)


def test_regression_metrics_equal_scikit_learn():
    rng = np.random.default_rng(4)
    y = rng.normal(10, 3, 500)
    y[:3] = 0.0  # MAPE divides by max(|y|, eps), as sklearn
    yhat = y + rng.normal(0, 1, 500)
    r = performance(y, yhat, task="regression", n_bootstrap=300)
    assert r["mae"].value == pytest.approx(skm.mean_absolute_error(y, yhat), abs=TOL)
    assert r["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, yhat), abs=TOL)
    assert r["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, yhat), rel=TOL)
    assert r["mse"].value == pytest.approx(skm.mean_squared_error(y, yhat), rel=TOL)
    assert r["r2"].value == pytest.approx(skm.r2_score(y, yhat), abs=TOL)
    assert all(m.method == "bootstrap" and m.lower <= m.value <= m.upper for m in r.metrics.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=2, max_size=40))
def test_mse_and_r2_equal_scikit_learn_on_any_small_sample(rows):
    y = np.array([r[0] for r in rows], dtype=float) / 4
    yhat = np.array([r[1] for r in rows], dtype=float) / 4
    r = performance(y, yhat, task="regression", metrics=["mse", "r2"], n_bootstrap=20)
    assert r["mse"].value == pytest.approx(skm.mean_squared_error(y, yhat), rel=TOL, abs=TOL)
    if np.ptp(y) > 0:
        assert r["r2"].value == pytest.approx(skm.r2_score(y, yhat), rel=1e-9, abs=1e-9)
    else:  # scikit-learn's force_finite=True substitutes 1.0 or 0.0; the variance is zero, R² undefined
        assert math.isnan(r["r2"].value) and "constant" in (r["r2"].note or "")


def test_r2_is_a_floor_and_mse_a_ceiling_for_thresholds():
    y = np.arange(20, dtype=float)
    r = performance(y, y[::-1], task="regression", metrics=["mse", "r2"], thresholds={"mse": 1.0, "r2": 0.5})
    assert r["r2"].value == pytest.approx(skm.r2_score(y, y[::-1]), abs=TOL) and r["r2"].value < 0
    assert r.breaches == {"mse": True, "r2": True}
    good = performance(y, y + 0.1, task="regression", metrics=["mse", "r2"], thresholds={"mse": 1.0, "r2": 0.5})
    assert good.breaches == {"mse": False, "r2": False}


def test_wilson_equals_scipy_and_handles_zero_trials():
    for k, n in [(0, 10), (7, 20), (20, 20), (513, 1000)]:
        expected = binomtest(k, n).proportion_ci(0.9, method="wilson")
        lower, upper = ci.wilson(k, n, 0.9)
        assert lower == pytest.approx(expected.low, abs=TOL) and upper == pytest.approx(expected.high, abs=TOL)
    assert all(math.isnan(v) for v in ci.wilson(0, 0))


def test_delong_variance_equals_the_pairwise_definition():
    y, _, score = _binary_data(1, n=150)  # ties included
    t = y.astype(bool)
    pos, neg = score[t], score[~t]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    auc, lower, upper = ci.delong_interval(t, score, 0.95)
    assert auc == pytest.approx(psi.mean(), abs=TOL)
    assert (upper - lower) / 2 == pytest.approx(1.959963984540054 * math.sqrt(var), abs=1e-9)


def test_bootstrap_is_seeded_vectorised_percentile():
    rng = np.random.default_rng(0)
    values = rng.exponential(size=300)
    lower, upper, valid = ci.bootstrap(ci.mean, (values,), 500, 0.9, seed=11)
    draws = np.random.default_rng(11).integers(0, 300, size=(500, 300))  # one block: same draws
    means = values[draws].mean(axis=1)
    assert (lower, upper) == tuple(np.quantile(means, [0.05, 0.95]))
    assert valid == 500
    assert ci.bootstrap(ci.mean, (values,), 500, 0.9, seed=11)[:2] == (lower, upper)


def test_intervals_cover_the_true_value_about_as_often_as_stated():
    rng = np.random.default_rng(2)
    hits = {"accuracy": 0, "f1": 0, "mae": 0}
    reps = 120
    for _ in range(reps):
        y = rng.integers(0, 2, 300)
        pred = np.where(rng.random(300) < 0.8, y, 1 - y)  # accuracy 0.8, F1 0.8 (balanced)
        r = performance(y, pred, metrics=["accuracy", "f1"], n_bootstrap=300, seed=None)
        hits["accuracy"] += r["accuracy"].lower <= 0.8 <= r["accuracy"].upper
        hits["f1"] += r["f1"].lower <= 0.8 <= r["f1"].upper
        err = rng.exponential(1.0, 300)
        m = performance(np.zeros(300), err, task="regression", metrics=["mae"], n_bootstrap=300, seed=None)
        hits["mae"] += m["mae"].lower <= 1.0 <= m["mae"].upper
    for name, h in hits.items():  # nominal 95 %; 120 reps: binomial sd ~2 %
        assert 0.87 <= h / reps <= 1.0, (name, h / reps)


def test_degenerate_windows_give_nan_with_a_note_never_an_error():
    empty = performance([], [], [])
    assert empty.n == 0 and all(math.isnan(m.value) and m.note for m in empty.metrics.values())
    one_class = performance([1, 1, 1], [1, 0, 1], [0.9, 0.2, 0.8])
    assert math.isnan(one_class["roc_auc"].value) and "one class" in one_class["roc_auc"].note
    assert one_class["accuracy"].value == pytest.approx(2 / 3)
    no_positive_predictions = performance([0, 1, 0], [0, 0, 0])
    assert math.isnan(no_positive_predictions["precision"].value)
    assert "no positive predictions" in no_positive_predictions["precision"].note
    assert performance([0, 0], [0, 0], metrics=["f1"])["f1"].note.startswith("undefined")
    empty_regression = performance([], [], task="regression")
    assert all(math.isnan(m.value) for m in empty_regression.metrics.values())


def test_missing_labels_predictions_and_scores_drop_only_their_rows():
    y = np.array([1, 0, None, 1, 0, np.nan], dtype=object)
    pred = np.array([1, 0, 1, None, 1, 1], dtype=object)
    score = np.array([0.9, 0.1, 0.7, 0.8, np.nan, 0.6])
    r = performance(y, pred, score)
    assert r.n == 6
    assert r["accuracy"].n == 3 and r["accuracy"].value == pytest.approx(2 / 3)  # rows 0, 1, 4
    assert r["roc_auc"].n == 3 and r["roc_auc"].value == 1.0  # rows 0, 1, 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks from NaN handling
        performance(np.array([np.nan, np.nan]), [1, 0], [0.2, 0.3])


@pytest.mark.parametrize(
    ("call", "message", "error"),
    [
        (lambda: performance([0, 1], [0, 1], task="ranking"), "task: expected", InvalidParameterError),
        (lambda: performance([0, 1], [0, 1], metrics=["mae"]), "metrics: unknown", InvalidParameterError),
        (lambda: performance([0, 1, 2], [0, 1, 2]), "binary task expects at most two classes", DataError),
        (lambda: performance([0, 1], [0]), "y_pred: expected 2 values", DataError),
        (lambda: performance([0, 1], None), "y_pred, y_score", DataError),
        (lambda: performance([0, 1], [0, 1], thresholds={"mae": 1}), "thresholds: unknown", InvalidParameterError),
        (lambda: performance([0, 1], y_score=[[0.1, 0.2, 0.7]] * 2, task="multiclass"), "y_score: expected", DataError),
        (lambda: performance(["a", "b"], ["a", "b"], task="regression"), "regression expects numbers", DataError),
    ],
)
def test_bad_arguments_are_named(call, message, error):
    with pytest.raises(error, match=message):
        call()


def test_thresholds_give_breaches_and_signals():
    y, pred, score = _binary_data(0)
    r = performance(y, pred, score, thresholds={"accuracy": 0.99, "log_loss": 10.0})
    assert r.breaches == {"accuracy": True, "log_loss": False}
    signals = {s.name: s for s in r.signals("fraud", "v1", 0.0, 3600.0)}
    assert set(signals) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    acc = signals["accuracy"]
    assert acc.breached and acc.threshold == 0.99 and acc.labels == {"metric": "accuracy", "task": "binary"}
    assert signals["f1"].threshold is None and not signals["f1"].breached
    assert r.to_dict()["metrics"]["accuracy"]["method"] == "wilson"


def test_performance_over_time_one_row_per_window_including_empty_ones():
    rng = np.random.default_rng(8)
    ts = np.r_[rng.uniform(0, 3600, 300), rng.uniform(7200, 10800, 300)]  # hour 2 has no traffic
    y = rng.integers(0, 2, 600)
    good = np.where(rng.random(600) < 0.9, y, 1 - y)
    bad = np.where(rng.random(600) < 0.6, y, 1 - y)
    pred = np.where(ts < 3600, good, bad)
    table = pd.DataFrame({"ts": ts, "y_true": y, "y_pred": pred})
    series = performance_over_time(table, "1h", ["accuracy"], thresholds={"accuracy": 0.8})
    rows = series.rows()
    assert [r["window_start"] for r in rows] == [0.0, 3600.0, 7200.0]
    assert [r["n"] for r in rows] == [300, 0, 300]
    assert rows[0]["accuracy_breached"] is False and rows[2]["accuracy_breached"] is True
    assert math.isnan(rows[1]["accuracy"]) and rows[1]["accuracy_breached"] is False
    assert rows[0]["accuracy"] == pytest.approx(skm.accuracy_score(y[:300], pred[:300]), abs=TOL)
    assert len(series.signals("m", "v1")) == 3
    assert list(series.to_pandas().columns[:3]) == ["window_start", "window_end", "n"]


def test_from_a_real_store_filled_through_the_sdk_with_late_labels(db_path):
    clock = aisre.ManualClock(1_700_000_000.0)
    rng = np.random.default_rng(1)
    monitor = aisre.Monitor("credit", "v2", store=f"sqlite:///{db_path}", clock=clock)
    truth, scores, sexes, ids = [], [], [], []
    for i in range(400):
        y = int(rng.integers(0, 2))
        p1 = float(np.clip(0.3 * y + 0.7 * rng.random(), 0, 1))
        sex = "F" if i % 3 else "M"
        ids.append(
            monitor.record(
                {"x": p1}, int(p1 >= 0.5), scores={"0": 1 - p1, "1": p1}, tags={"sex": sex}, ts=clock.now() + 9 * i
            )
        )
        truth.append(y), scores.append(p1), sexes.append(sex)
    monitor.flush()
    for rid, y in list(zip(ids, truth, strict=True))[:300]:  # labels arrive late, for 300 of 400
        monitor.label(rid, y)
    since, until = clock.now(), clock.now() + 3600
    window = labeled_window(monitor.store, "credit", "v2", since, until)
    y_true, y_pred, y_score = window
    assert len(y_true) == 300 and window.classes == ["0", "1"] and y_score.shape == (300, 2)
    report = performance(y_true, y_pred, y_score, classes=window.classes)
    t, s = np.array(truth[:300]), np.array(scores[:300])
    assert report["accuracy"].value == pytest.approx(skm.accuracy_score(t, s >= 0.5), abs=TOL)
    assert report["roc_auc"].value == pytest.approx(skm.roc_auc_score(t, s), abs=TOL)

    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    from aisre.monitor.fairness.groups import fairness

    fair = fairness(y_true, y_pred, window.sensitive("sex"), sensitive_name="sex")
    sex = np.array(sexes[:300])
    assert fair.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(t, (s >= 0.5).astype(int), sensitive_features=sex), abs=TOL
    )
    assert fair.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(t, (s >= 0.5).astype(int), sensitive_features=sex), abs=TOL
    )
    signals = report.signals("credit", "v2", since, until) + fair.signals("credit", "v2", since, until)
    monitor.store.write_signals(signals, ts=until)
    stored = monitor.store.signals(model="credit", name="demographic_parity_difference")
    assert stored[0][1].labels == {"sensitive_feature": "sex", "metric": "demographic_parity_difference"}

    pairs = monitor.store.labeled_records(aisre.store.RecordFilter("credit", "v2"))
    series = performance_over_time(pairs, window="20m", metrics=["accuracy", "roc_auc"])
    assert sum(r["n"] for r in series.rows()) == 300
    monitor.close()


def test_window_widths_parse_and_bad_ones_are_named():
    from datetime import timedelta

    from aisre.monitor.tabular.windows import parse_window

    assert [parse_window(w) for w in ("90s", "15m", "1h", "1d", 30, timedelta(hours=2))] == [
        90.0,
        900.0,
        3600.0,
        86400.0,
        30.0,
        7200.0,
    ]
    for bad in ("soon", "-1h", 0, float("nan")):
        with pytest.raises(InvalidParameterError, match="window:"):
            parse_window(bad)


def test_scores_stored_as_mappings_lists_or_one_probability_become_one_matrix():
    from aisre.monitor.tabular.labeled import score_matrix

    matrix, classes = score_matrix([{"1": 0.8, "0": 0.2}, [0.6, 0.4], 0.3, None])
    assert classes == ["0", "1"]
    np.testing.assert_allclose(matrix[:3], [[0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    assert np.isnan(matrix[3]).all()
    assert score_matrix([None, None]) == (None, [])
    wide, names = score_matrix([{"cat": 0.1, "dog": 0.9}, {"bird": 1.0}])
    assert names == ["bird", "cat", "dog"] and np.isnan(wide[0, 0]) and wide[1, 0] == 1.0
