"""The Poisson bootstrap of engine performance intervals, without an engine: weights, merges, one-machine agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import aisre
from aisre.monitor.engines import bootstrap, bootstrap_auc
from aisre.monitor.engines import performance as engine_performance
from aisre.monitor.engines.bootstrap import Replicates
from tests.engine_helpers import (
    CLASS_SCORES,
    POISSON_CASES,
    assert_interval_agrees,
    chunks_of,
    on_chunks,
    performance_frame,
)


def _weights(reps: Replicates, rows: int, *keys: np.ndarray) -> np.ndarray:
    return np.concatenate([w for _, _, w in reps.weights(rows, *keys)], axis=0).T.astype(np.float64)


def test_poisson_weights_follow_poisson_one_and_depend_only_on_seed_and_rows():
    reps = Replicates(count=400, seed=5)
    y = np.arange(3000.0)
    w = _weights(reps, len(y), y)
    assert w.shape == (400, 3000)
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.var() == pytest.approx(1.0, abs=0.02)
    pmf = np.bincount(w.astype(int).ravel(), minlength=5)[:5] / w.size
    assert pmf == pytest.approx([np.exp(-1), np.exp(-1), np.exp(-1) / 2, np.exp(-1) / 6, np.exp(-1) / 24], abs=2e-3)
    assert np.array_equal(w, _weights(Replicates(400, 5), len(y), y.copy()))
    assert not np.array_equal(w, _weights(Replicates(400, 6), len(y), y))
    assert not np.array_equal(w, _weights(reps, len(y), y + 1.0))  # another partition's rows: another stream
    assert abs(np.corrcoef(w[:, 0], w[:, 1])[0, 1]) < 0.2  # rows independent


def test_merged_regression_partials_equal_the_weighted_sums_over_all_rows():
    rng = np.random.default_rng(1)
    y = 1e9 + rng.normal(0, 1.0, 900)  # a large offset: a naive Σwy² − (Σwy)²/Σw would lose every digit
    yhat = y + rng.normal(0, 0.5, 900)
    reps = Replicates(count=50, seed=3)
    parts = [(y[:300], yhat[:300]), (y[300:310], yhat[300:310]), (y[310:], yhat[310:])]
    partials = [bootstrap.regression_partial(reps, a, b, 1e-12) for a, b in parts]
    merged = partials[0]
    for p in [None, *partials[1:]]:
        merged = bootstrap.merge_regression(merged, p)
    w = np.concatenate([_weights(reps, len(a), a, b) for a, b in parts], axis=1)
    err = yhat - y
    mean = (w * y).sum(axis=1) / w.sum(axis=1)
    assert merged["w"] == pytest.approx(w.sum(axis=1), rel=1e-12)
    assert merged["abs"] == pytest.approx((w * np.abs(err)).sum(axis=1), rel=1e-10)
    assert merged["sq"] == pytest.approx((w * err * err).sum(axis=1), rel=1e-10)
    assert merged["mean"] == pytest.approx(mean, rel=1e-14)
    assert merged["m2"] == pytest.approx((w * (y - mean[:, None]) ** 2).sum(axis=1), rel=1e-6)
    r2 = bootstrap.regression_replicates("r2", merged)
    assert np.all((r2 > 0.6) & (r2 < 0.9))  # var(y) = 1, var(e) = 0.25: R² ~ 0.75


def test_merged_score_cell_counts_give_the_weighted_mann_whitney_auc_of_each_replicate():
    rng = np.random.default_rng(2)
    scores, positive = rng.random(120), rng.random(120) < 0.4
    reps = Replicates(count=20, seed=9)
    cut = [bootstrap_auc.cuts(np.unique(scores), np.ones(120), 1024)]  # every score its own cell: exact
    halves = [slice(0, 70), slice(70, 120)]
    parts = [
        bootstrap_auc.counts_partial(reps, scores[h, None], positive[h, None], None, cut, (positive[h], scores[h]))
        for h in halves
    ]
    merged = bootstrap_auc.merge_counts(*parts)
    got, _ = bootstrap_auc.binned_auc(merged["h"])
    w = np.concatenate(
        [_weights(reps, 70, positive[:70], scores[:70]), _weights(reps, 50, positive[70:], scores[70:])], 1
    )
    above = (scores[:, None] > scores[None, :]).astype(float)
    wp, wn = w * positive, w * ~positive
    want = np.einsum("bi,ij,bj->b", wp, above, wn) / (wp.sum(1) * wn.sum(1))
    assert got[:, 0] == pytest.approx(want, rel=1e-12)
    assert merged["h0"].sum() == 120


def test_equal_count_cuts_keep_cells_near_equal_and_each_distinct_value_when_they_fit():
    values = np.arange(10.0)
    assert bootstrap_auc.cuts(values, np.ones(10), 16).tolist() == list(range(1, 10))
    cut = bootstrap_auc.cuts(np.arange(1000.0), np.ones(1000), 10)
    cells = np.bincount(np.searchsorted(cut, np.arange(1000.0), side="right"))
    assert len(cells) == 10 and cells.min() >= 99 and cells.max() <= 101


@pytest.fixture(scope="module")
def df():
    return performance_frame(3000, seed=5)


@pytest.fixture(scope="module")
def one_machine(df):
    """The one-machine report (row bootstrap, B = 1000) of each Poisson case, computed once."""
    return [
        aisre.performance(*(None if c is None else df[c] for c in columns), **opts) for columns, opts in POISSON_CASES
    ]


@pytest.mark.parametrize("case", range(len(POISSON_CASES)))
def test_poisson_intervals_of_one_partition_agree_with_the_one_machine_row_bootstrap(df, one_machine, case):
    columns, options = POISSON_CASES[case]
    got = aisre.performance(*columns, data=df, **options)
    for name, g in got.metrics.items():
        assert g.value == pytest.approx(one_machine[case].metrics[name].value, rel=1e-12)
        assert_interval_agrees(one_machine[case].metrics[name], g)


def test_partitioned_intervals_agree_with_one_machine_and_repeat_under_one_seed(df, one_machine):
    chunks = chunks_of(df, 4)
    for (columns, options), want in zip(POISSON_CASES, one_machine, strict=True):
        got = on_chunks(chunks, columns, **options)
        for name, g in got.metrics.items():
            assert_interval_agrees(want.metrics[name], g)
    columns, options = POISSON_CASES[0]
    first = on_chunks(chunks, columns, **options)
    assert on_chunks(chunks, columns, **options) == first
    assert on_chunks(chunks, columns, seed=1, **options)["mse"].lower != first["mse"].lower


def test_one_row_and_a_constant_truth_give_nan_r2_with_a_note_not_an_error():
    one = aisre.performance("y", "yhat", task="regression", data=pd.DataFrame({"y": [1.0], "yhat": [2.0]}))
    assert np.isnan(one["r2"].value) and "constant" in one["r2"].note
    assert (one["mae"].value, one["mae"].lower, one["mae"].upper) == (1.0, 1.0, 1.0)
    assert "replicates undefined, left out" in one["mae"].note  # a replicate that drew weight 0 for the row
    flat = pd.DataFrame({"y": [3.0] * 50, "yhat": np.linspace(0, 5, 50)})
    r2 = aisre.performance("y", "yhat", task="regression", data=flat)["r2"]
    assert np.isnan(r2.lower) and r2.method == "none" and "constant" in r2.note


def test_multiclass_auc_on_the_2_20_grid_states_each_class_bound_and_stays_within_the_macro_one(df, monkeypatch):
    options = {"y_score": list(CLASS_SCORES), "task": "multiclass", "metrics": ["roc_auc"], "n_bootstrap": 100}
    exact = aisre.performance("cls", data=df, **options)["roc_auc"]  # < 65,536 distinct scores: exact
    assert exact.note is None or "2^-20" not in exact.note
    monkeypatch.setattr(engine_performance, "EXACT_SCORES", 100)
    auc = aisre.performance("cls", data=df, **options)["roc_auc"]
    assert "per-class |error| <= [" in auc.note
    macro = float(auc.note.split("macro |error| <= ")[1].split(";")[0])
    assert 0 < abs(auc.value - exact.value) <= macro * 1.001 + 1e-15
    assert auc.method == "poisson_bootstrap" and auc.lower <= auc.value <= auc.upper


def test_too_many_classes_for_the_replicate_budget_omit_the_interval_and_say_how_to_fix():
    rng = np.random.default_rng(4)
    k = 40
    raw = rng.random((400, k))
    frame = pd.DataFrame(raw / raw.sum(axis=1, keepdims=True), columns=[f"p{j}" for j in range(k)])
    frame["label"] = rng.integers(0, k, 400).astype(str)
    names = sorted(frame["label"].unique())
    if len(names) != k:
        pytest.skip("every class must be drawn")
    got = aisre.performance(
        "label", y_score=[f"p{j}" for j in range(k)], task="multiclass", classes=names, n_bootstrap=2000, data=frame
    )
    auc = got["roc_auc"]
    assert not np.isnan(auc.value) and np.isnan(auc.lower) and auc.method == "none"
    assert "lower n_bootstrap" in auc.note
    assert got["log_loss"].method == "poisson_bootstrap"  # log loss needs no score cells
