"""Feature importance monitoring: sklearn/scipy parity, ranking alerts, drift impact on a real model."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aisre
from aisre.monitor.importance.api import (
    DRIFT_IMPACT_THRESHOLD,
    FeatureImportance,
    compare_importance,
    drift_impact,
    kendall_tau,
    labelled_window,
    model_importance,
    permutation_importance,
    spearman,
    window_importance,
)
from aisre.monitor.tabular.frame import DataError
from aisre.store import RecordFilter


@pytest.fixture(scope="module")
def diabetes():
    """A random forest on the diabetes data; s5 and bmi carry most of its importance, age little."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
    model = RandomForestRegressor(n_estimators=50, min_samples_leaf=5, random_state=0).fit(X_train, y_train)
    reference = permutation_importance(model, X_test, y_test, n_repeats=5, random_state=0)
    return model, X_train, X_test, y_test, reference


# -- parity with the reference implementations -------------------------------------------------
def test_permutation_importance_matches_sklearn_exactly(diabetes):
    model, _, X_test, y_test, _ = diabetes
    for X, y in ((X_test, y_test), (X_test.to_numpy(), y_test.to_numpy())):
        with warnings.catch_warnings():  # numpy input to a model fitted on a frame
            warnings.simplefilter("ignore", UserWarning)
            ours = permutation_importance(model, X, y, n_repeats=3, random_state=7)
            theirs = sklearn_permutation_importance(model, X, y, n_repeats=3, random_state=7)
        assert np.array_equal(ours.raw, theirs.importances)
        assert np.array_equal(ours.values, theirs.importances_mean)
        assert np.array_equal(ours.std, theirs.importances_std)
    assert ours.features == tuple(f"x{i}" for i in range(10))


def test_permutation_importance_with_named_scorer_matches_sklearn():
    X, y = load_diabetes(return_X_y=True)
    labels = (y > np.median(y)).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, labels)
    ours = permutation_importance(model, X, labels, scoring="roc_auc", n_repeats=2, random_state=1)
    theirs = sklearn_permutation_importance(model, X, labels, scoring="roc_auc", n_repeats=2, random_state=1)
    assert np.array_equal(ours.raw, theirs.importances)


@pytest.mark.parametrize("seed", range(6))
def test_rank_correlations_match_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    a = rng.normal(size=n)
    b = a + rng.normal(scale=0.8, size=n)
    if seed % 2:  # ties on both sides
        a, b = np.round(a), np.round(b)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_rank_correlation_of_a_constant_vector_is_nan_and_never_breaches():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1, 2, 3], [0, 0, 0]))
    shift = compare_importance({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    assert not any(shift.rank_breached.values()) and not shift.alert


# -- importance per window --------------------------------------------------------------------
def test_without_labels_the_models_own_importances_are_used(diabetes):
    model, _, X_test, _, _ = diabetes
    own = window_importance(model, X_test)
    assert own.method == "feature_importances_"
    assert own.features == tuple(X_test.columns)
    assert np.array_equal(own.values, model.feature_importances_)
    labelled = window_importance(model, X_test, X_test["bmi"] * 0 + 1.0)
    assert labelled.method == "permutation"


def test_coefficients_are_taken_in_absolute_value_through_a_pipeline():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    labels = (y > np.median(y)).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, labels)
    own = model_importance(model, list(X.columns))
    assert own.method == "coef_"
    assert np.allclose(own.values, np.abs(model[-1].coef_[0]))
    assert sum(own.shares().values()) == pytest.approx(1.0)


def test_model_without_importances_asks_for_labels():
    with pytest.raises(DataError, match="pass labels"):
        model_importance(object())


def test_permutation_importance_from_a_labelled_window_in_a_real_store(diabetes, tmp_path: Path):
    model, _, X_test, y_test, reference = diabetes
    monitor = aisre.Monitor("diabetes", "v1", store=f"sqlite:///{tmp_path / 'aisre.db'}")
    ids = [
        monitor.record(row, float(p)) for row, p in zip(X_test.to_dict("records"), model.predict(X_test), strict=True)
    ]
    monitor.label_many(zip(ids, y_test.tolist(), strict=True))
    monitor.flush()
    pairs = monitor.store.labeled_records(RecordFilter(model="diabetes", version="v1"))
    monitor.close()
    rows, y = labelled_window(pairs, list(X_test.columns))
    import pandas as pd

    from_store = permutation_importance(model, pd.DataFrame(rows), y, n_repeats=5, random_state=0)
    assert from_store.features == reference.features
    assert np.allclose(from_store.values, reference.values)


# -- ranking shifts ---------------------------------------------------------------------------
def test_a_stuck_important_feature_moves_the_ranking_and_alerts(diabetes):
    model, X_train, X_test, y_test, reference = diabetes
    broken = X_test.copy()
    broken["s5"] = X_train["s5"].median()  # an upstream bug: the feature arrives constant
    current = permutation_importance(model, broken, y_test, n_repeats=5, random_state=0)
    shift = compare_importance(reference, current)
    assert shift.alert
    assert shift.jumped[0] == "s5"
    assert shift.current_shares["s5"] == 0.0
    assert shift.spearman < 0.8 and shift.kendall < 0.6
    by_name = {(s.name, tuple(s.labels.items())): s for s in shift.signals("diabetes", "v1", 0.0, 60.0)}
    assert by_name[("feature_importance_rank_correlation", (("method", "spearman"),))].breached
    assert by_name[("feature_importance_share", (("feature", "s5"),))].breached
    assert not by_name[("feature_importance_share", (("feature", "age"),))].breached


def test_a_fresh_sample_of_the_same_data_does_not_alert(diabetes):
    model, _, X_test, y_test, reference = diabetes
    rows = np.random.default_rng(1).choice(len(X_test), len(X_test), replace=True)
    current = permutation_importance(model, X_test.iloc[rows], y_test.iloc[rows], n_repeats=5)
    shift = compare_importance(reference, current)
    assert not shift.alert, shift.to_dict()


def test_share_jump_rule_uses_absolute_share_change():
    shift = compare_importance({"a": 6, "b": 3, "c": 1}, {"a": 4, "b": 3, "c": 3})  # a: .6 -> .4
    assert shift.share_changes["a"] == pytest.approx(-0.2)
    assert sorted(shift.jumped) == ["a", "c"] and shift.alert
    assert not compare_importance({"a": 6, "b": 3, "c": 1}, {"a": 5.5, "b": 3.5, "c": 1}).alert


def test_compare_rejects_different_feature_sets_naming_them():
    with pytest.raises(DataError, match=r"only in reference: \['b'\]"):
        compare_importance({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    with pytest.raises(ValueError, match="min_spearman"):
        compare_importance({"a": 1.0}, {"a": 1.0}, min_spearman=2)


# -- drift impact -----------------------------------------------------------------------------
def _ks_drift(reference, current) -> dict[str, dict[str, float | bool]]:
    """Per-column drift verdicts as a drift package would give them (KS, alpha 0.05)."""
    out = {}
    for column in reference.columns:
        result = stats.ks_2samp(reference[column], current[column])
        out[column] = {"drift": bool(result.pvalue < 0.05), "statistic": float(result.statistic)}
    return out


def test_shift_in_an_important_feature_is_impactful_and_in_an_unimportant_one_is_not(diabetes):
    model, X_train, X_test, y_test, reference = diabetes
    baseline_r2 = model.score(X_test, y_test)
    verdicts = {}
    for feature in ("s5", "age"):
        shifted = X_test.copy()
        shifted[feature] += 2 * X_train[feature].std()
        drift = _ks_drift(X_test, shifted)
        assert [c for c, r in drift.items() if r["drift"]] == [feature]  # both shifts are detected
        impact = drift_impact(reference, drift)
        verdicts[feature] = (impact, baseline_r2 - model.score(shifted, y_test))
    important, unimportant = verdicts["s5"][0], verdicts["age"][0]
    assert important.breached and important.score >= DRIFT_IMPACT_THRESHOLD
    assert important.drifted[0][0] == "s5"
    assert not unimportant.breached and unimportant.score < 0.05
    # and the verdict is right: the important shift hurts the model, the unimportant one barely
    assert verdicts["s5"][1] > 0.3 > 0.05 > verdicts["age"][1]
    [signal] = important.signals("diabetes", "v1", 0.0, 60.0)
    assert (signal.name, signal.value, signal.breached) == ("drift_impact", important.score, True)


def test_drift_impact_ranks_drifted_features_by_reference_share():
    importance = FeatureImportance(("a", "b", "c", "d"), np.array([0.1, 0.5, -0.05, 0.4]), "given")
    results = {
        "a": True,
        "b": {"drift": False, "statistic": 0.01},
        "d": type("R", (), {"drift": True, "statistic": 0.3})(),
        "zip_code": True,
    }
    impact = drift_impact(importance, results)
    assert impact.drifted == [("d", 0.4), ("a", 0.1)]
    assert impact.score == pytest.approx(0.5)
    assert impact.statistics == {"d": 0.3}
    assert impact.unranked == ["zip_code"]
    report = type("Report", (), {"columns": {"c": True}})()  # a drift report with .columns
    assert drift_impact(importance, report).score == 0.0  # negative importance has no share


def test_drift_impact_names_a_bad_result():
    with pytest.raises(DataError, match=r"drift_results\['a'\]"):
        drift_impact({"a": 1.0}, {"a": 0.3})
