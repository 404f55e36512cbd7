"""Multivariate drift: catches a correlation flip univariate tests miss, keeps its false-alarm
rate, computes p = (k+1)/(B+1), and reproduces NannyML's PCA reconstruction step by step."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.drift.registry import get_method
from aisre.monitor.multivariate.api import multivariate_drift
from aisre.monitor.multivariate.domain_classifier import roc_auc, within_fold_permutations
from aisre.monitor.multivariate.mmd import critical_value, mmd2_unbiased, mmd_test, permutation_p_value, rbf_kernel
from aisre.monitor.multivariate.reconstruction import ReconstructionModel
from aisre.monitor.tabular.frame import to_columns

FAST_HGB = {"params": {"max_iter": 30}, "n_permutations": 100}
# 50 seeded no-drift repetitions at alpha = 0.05: 2.5 alarms expected; 8 is the 99.9%
# binomial quantile (P(X > 8) = 0.0008), the stated tolerance.
REPS, ALPHA, MAX_FALSE_ALARMS = 50, 0.05, 8


def correlated(n: int, rho: float, rng: np.random.Generator) -> pd.DataFrame:
    """Two standard normal features with correlation rho: the marginals never change."""
    xy = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    return pd.DataFrame({"a": xy[:, 0], "b": xy[:, 1]})


@pytest.mark.parametrize(
    "method, options",
    [("mmd", {}), ("domain_classifier", FAST_HGB), ("pca", {})],
)
def test_correlation_flip_is_caught_though_every_marginal_passes_ks(method, options):
    rng = np.random.default_rng(7)
    reference, flipped = correlated(800, 0.8, rng), correlated(800, -0.8, rng)
    # the same values per column as the reference, re-paired by the flipped sample's ranks:
    # identical marginals (KS D = 0), correlation -0.8 instead of +0.8
    ranks = {c: flipped[c].rank(method="first").astype(int) - 1 for c in ("a", "b")}
    current = pd.DataFrame({c: np.sort(reference[c].to_numpy())[ranks[c]] for c in ("a", "b")})
    for column in ("a", "b"):
        ks = get_method("ks").fit(reference[column].to_numpy()).score(current[column].to_numpy())
        assert not ks.drift, f"univariate KS should miss the flip on {column}: p={ks.p_value}"
    result = multivariate_drift(reference, current, method=method, **options)
    assert result.drift
    if result.p_value is not None:
        assert result.p_value < 0.05 and result.statistic > result.threshold


def test_domain_classifier_names_the_feature_that_drifted():
    rng = np.random.default_rng(3)
    n = 600
    plans = ["basic", "plus", "pro"]
    reference = pd.DataFrame(
        {"age": rng.normal(40, 10, n), "income": rng.normal(50, 5, n), "plan": rng.choice(plans, n, p=[0.6, 0.3, 0.1])}
    )
    current = reference.copy()
    current["plan"] = rng.choice(plans, n, p=[0.3, 0.3, 0.4])
    current["age"] = rng.normal(40, 10, n)
    result = multivariate_drift(reference, current, method="domain_classifier", **FAST_HGB)
    assert result.drift
    ranked = list(result.details["feature_importances"])
    assert ranked[0] == "plan"
    assert result.details["feature_importances"]["plan"] > 0.05


@pytest.mark.parametrize(
    "method, options",
    [
        ("mmd", {"n_permutations": 200}),
        ("domain_classifier", {"params": {"max_iter": 20}, "n_permutations": 100, "importances": False}),
    ],
)
def test_false_alarm_rate_on_same_distribution_stays_within_alpha(method, options):
    alarms = []
    for seed in range(REPS):
        rng = np.random.default_rng(1000 + seed)
        reference, current = correlated(120, 0.5, rng), correlated(120, 0.5, rng)
        result = multivariate_drift(reference, current, method=method, alpha=ALPHA, seed=seed, **options)
        alarms.append(result.drift)
    assert sum(alarms) <= MAX_FALSE_ALARMS, f"{method}: {sum(alarms)} false alarms in {REPS} runs"


def test_pca_does_not_alarm_on_same_distribution():
    rng = np.random.default_rng(11)
    reference = correlated(5000, 0.8, rng)
    alarms = [multivariate_drift(reference, correlated(500, 0.8, rng), method="pca").drift for _ in range(20)]
    assert sum(alarms) <= 1


def test_permutation_p_value_is_k_plus_one_over_b_plus_one():
    permuted = np.array([0.5, 1.0, 2.0, 3.0])
    assert permutation_p_value(2.0, permuted) == pytest.approx((2 + 1) / (4 + 1))
    assert permutation_p_value(9.0, permuted) == pytest.approx(1 / 5)  # never 0
    assert permutation_p_value(0.0, permuted) == pytest.approx(5 / 5)
    # the critical value agrees with p < alpha for every observed value
    for alpha in (0.05, 0.2, 0.5):
        c = critical_value(permuted, alpha)
        for observed in (0.0, 0.5, 0.7, 1.0, 2.0, 2.5, 3.0, 9.0):
            assert (observed > c) == (permutation_p_value(observed, permuted) < alpha)


def test_mmd_matches_a_brute_force_computation_on_a_tiny_example():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([[3.0, 3.0], [4.0, 3.0], [3.5, 4.0]])
    observed, permuted, details = mmd_test(x, y, n_permutations=400, seed=5)
    sigma = details["bandwidth"]
    pooled = np.vstack([x, y])
    d = np.sqrt(((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1))
    assert sigma == pytest.approx(np.median(d[np.triu_indices(6, 1)]))

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    def mmd2(a, b):
        m, n = len(a), len(b)
        xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
        return xx + yy - 2 * xy

    assert observed == pytest.approx(mmd2(x, y))
    # every permuted statistic is the MMD of some relabelling of the 6 rows into 3 + 3
    splits = [
        mmd2(pooled[list(s)], pooled[[i for i in range(6) if i not in s]]) for s in itertools.combinations(range(6), 3)
    ]
    assert all(np.isclose(splits, v).any() for v in permuted)
    # observed is the largest of the 20 splits (with its mirror): k counts both
    k_ge = int(np.sum(permuted >= observed - 1e-12))
    assert permutation_p_value(observed, permuted) == pytest.approx((k_ge + 1) / (400 + 1))
    assert k_ge / 400 == pytest.approx(2 / 20, abs=0.05)
    assert mmd2_unbiased(rbf_kernel(d**2, sigma), 3) == pytest.approx(observed)


def test_auc_and_within_fold_permutations_are_rank_sums():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.permutation(np.r_[np.zeros(20), np.ones(20)])
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    fold_of = np.empty(40, dtype=int)  # stratified: 5 + 5 per fold, as StratifiedKFold makes
    for label in (0, 1):
        fold_of[labels == label] = np.arange(20) % 4
    permuted = within_fold_permutations(scores, labels, fold_of, 2000, seed=1)
    assert permuted.shape == (2000,) and np.all((permuted >= 0) & (permuted <= 1))
    # with stratified folds the relabelled AUCs centre on 0.5 whatever the observed labels
    assert permuted.mean() == pytest.approx(0.5, abs=0.01)
    # one fold holding everything is a plain permutation of all labels
    rng = np.random.default_rng(9)
    brute = [roc_auc(scores, rng.permutation(labels)) for _ in range(2000)]
    single = within_fold_permutations(scores, labels, np.zeros(40, dtype=int), 2000, seed=2)
    assert np.quantile(single, 0.95) == pytest.approx(np.quantile(brute, 0.95), abs=0.02)


def test_refit_permutation_runs_the_classic_test():
    rng = np.random.default_rng(8)
    reference, current = correlated(150, 0.8, rng), correlated(150, 0.0, rng)
    options = {"n_permutations": 19, "params": {"max_iter": 15}, "importances": False, "alpha": 0.1}
    result = multivariate_drift(reference, current, method="domain_classifier", permutation="refit", **options)
    assert result.details["permutation"] == "refit"
    assert result.p_value == pytest.approx(1 / 20) and result.drift


def _manual_reconstruction(reference: pd.DataFrame, current: pd.DataFrame, chunk: int):
    """NannyML's steps with scikit-learn: impute, count-encode (shares), scale, PCA(0.65)."""
    num, cat = ["x", "y", "z"], ["colour"]
    mean_imp = SimpleImputer(strategy="mean").fit(reference[num])
    freq_imp = SimpleImputer(strategy="most_frequent").fit(reference[cat].astype(object))

    def encode(df: pd.DataFrame, shares: dict | None = None):
        out = df.copy()
        out[num] = mean_imp.transform(df[num])
        out[cat] = freq_imp.transform(df[cat].astype(object))
        return out

    ref = encode(reference)
    shares = ref["colour"].value_counts(normalize=True).to_dict()

    def to_matrix(df):  # noqa: E306
        m = df[["x", "y", "z", "colour"]].copy()
        m["colour"] = m["colour"].map(shares).fillna(0.0).astype(float)
        return m.to_numpy(dtype=float)

    scaler = StandardScaler().fit(to_matrix(ref))
    pca = PCA(n_components=0.65, random_state=16).fit(scaler.transform(to_matrix(ref)))

    def errors(df):
        z = scaler.transform(to_matrix(encode(df)))
        return np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)

    ref_chunks = np.array(
        [errors(reference.iloc[i : i + chunk]).mean() for i in range(0, len(reference) - chunk + 1, chunk)]
    )
    return errors(current), pca.n_components_, ref_chunks


def test_pca_reconstruction_matches_a_step_by_step_scikit_learn_computation():
    rng = np.random.default_rng(5)
    n = 2000
    base = rng.normal(size=(n, 3)) @ np.array([[1.0, 0.6, 0.3], [0.0, 0.8, 0.5], [0.0, 0.0, 0.7]])
    reference = pd.DataFrame(base, columns=["x", "y", "z"])
    reference["colour"] = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    reference.loc[rng.choice(n, 50, replace=False), "y"] = np.nan
    reference.loc[rng.choice(n, 30, replace=False), "colour"] = None
    current = reference.sample(400, random_state=1).reset_index(drop=True)
    current.loc[:10, "colour"] = "violet"  # unseen in the reference -> share 0
    current["z"] = current["z"] * -1.0 + 0.5

    expected_errors, k, ref_chunks = _manual_reconstruction(reference, current, 400)
    model = ReconstructionModel.fit(to_columns(reference))
    np.testing.assert_allclose(model.row_errors(to_columns(current)), expected_errors, rtol=1e-9, atol=1e-9)
    assert model.components.shape[0] == k

    result = multivariate_drift(reference, current, method="pca")
    assert result.statistic == pytest.approx(expected_errors.mean())
    assert result.threshold == pytest.approx(ref_chunks.mean() + 3 * ref_chunks.std())
    assert result.details["reference_chunks"] == 5 and result.details["n_components"] == k


def test_signals_carry_the_documented_names():
    rng = np.random.default_rng(2)
    reference, current = correlated(200, 0.5, rng), correlated(200, 0.5, rng)
    names = {
        m: multivariate_drift(reference, current, method=m, **opts).signals("fraud", "v3", 0.0, 60.0)[0].name
        for m, opts in [("mmd", {}), ("pca", {}), ("domain_classifier", FAST_HGB)]
    }
    expected = {"mmd": "mmd", "pca": "reconstruction_error", "domain_classifier": "multivariate_drift_auc"}
    assert names == expected
    signal = multivariate_drift(reference, current, method="mmd").signals("fraud", "v3", 0.0, 60.0)[0]
    assert (signal.model, signal.version, signal.window_start, signal.window_end) == ("fraud", "v3", 0.0, 60.0)


def test_accepts_rows_and_arrays_and_names_bad_arguments():
    rng = np.random.default_rng(4)
    rows = [{"a": float(v), "kind": "x" if v > 0 else "y"} for v in rng.normal(size=100)]
    assert multivariate_drift(rows, rows[:60], method="mmd").p_value > 0.05
    with pytest.raises(InvalidParameterError, match="method"):
        multivariate_drift(rows, rows, method="nope")
    with pytest.raises(DataError, match="kind"):
        multivariate_drift(rows, [{"a": 1.0}] * 10, method="mmd")
    with pytest.raises(InvalidParameterError, match="alpha"):
        multivariate_drift(rows, rows, method="mmd", alpha=2)
    with pytest.raises(DataError, match="'a'"):
        multivariate_drift(rows, [{"a": "text", "kind": "x"}] * 10, method="pca")
