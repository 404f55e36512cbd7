"""Experiment statistics equal their references (scipy, published values), and the sequential test
keeps its false-positive rate under peeking where a peeked fixed-sample z-test does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from aisre.errors import InvalidParameterError
from aisre.respond import stats


def _reference_ztest(x1, n1, x2, n2, alternative):
    """statsmodels' proportions_ztest formula (statsmodels is not a dependency): pooled variance."""
    p = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    tail = {"two-sided": 2 * sps.norm.sf(abs(z)), "greater": sps.norm.sf(z), "less": sps.norm.cdf(z)}
    return z, tail[alternative]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("counts", [(30, 1000, 45, 1000), (5, 80, 1, 120), (400, 500, 380, 520)])
def test_two_proportion_ztest_equals_the_pooled_formula(counts, alternative):
    result = stats.two_proportion_ztest(*counts, alternative=alternative)
    z, p = _reference_ztest(*counts, alternative)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-10)


def test_two_proportion_ztest_equals_a_chi_square_test_without_correction():
    # The two-sided pooled z-test is the 2x2 chi-square test: z² = χ², same p (an independent check).
    result = stats.two_proportion_ztest(30, 1000, 45, 900)
    chi2, p, _, _ = sps.chi2_contingency([[30, 970], [45, 855]], correction=False)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_ttest_equals_scipy(alternative):
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(1.3, 3.0, 25)
    ours = stats.welch_ttest(a, b, alternative)
    ref = sps.ttest_ind(b, a, equal_var=False, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)


def test_mean_difference_interval_equals_scipy_welch_interval():
    rng = np.random.default_rng(4)
    a, b = rng.gamma(2.0, 1.0, 60), rng.gamma(2.5, 1.0, 45)
    effect = stats.mean_difference(a, b, 0.9)
    ci = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.9)
    assert (effect.lower, effect.upper) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert effect.estimate == pytest.approx(b.mean() - a.mean())


def test_newcombe_interval_matches_newcombe_1998_example():
    # Newcombe (1998) Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    effect = stats.proportion_difference(48, 80, 56, 70)
    assert effect.estimate == pytest.approx(0.2)
    assert effect.lower == pytest.approx(0.0524, abs=1e-4)
    assert effect.upper == pytest.approx(0.3339, abs=1e-4)


def test_wald_interval_is_the_textbook_formula():
    effect = stats.proportion_difference(48, 80, 56, 70, method="wald")
    half = sps.norm.ppf(0.975) * math.sqrt(0.6 * 0.4 / 80 + 0.8 * 0.2 / 70)
    assert (effect.lower, effect.upper) == pytest.approx((0.2 - half, 0.2 + half))


def test_relative_lift_interval_is_the_katz_log_interval_of_a_risk_ratio():
    pa, pb, na, nb = 0.1, 0.15, 1000, 1000
    effect = stats.relative_lift(pa, pa * (1 - pa), na, pb, pb * (1 - pb), nb)
    se = math.sqrt((1 - pb) / (nb * pb) + (1 - pa) / (na * pa))  # Katz: sqrt(1/x_b - 1/n_b + 1/x_a - 1/n_a)
    assert effect.estimate == pytest.approx(0.5)
    assert effect.lower == pytest.approx(1.5 * math.exp(-1.959964 * se) - 1, rel=1e-6)


def test_obrien_fleming_boundaries_match_published_values():
    # gsDesign sfLDOF, two-sided alpha 0.05 (0.025 a side), 4 and 5 equally spaced looks.
    assert stats.obrien_fleming_boundaries([0.25, 0.5, 0.75, 1.0]) == pytest.approx(
        [4.3326, 2.9631, 2.3590, 2.0141], abs=2e-3
    )
    assert stats.obrien_fleming_boundaries([0.2, 0.4, 0.6, 0.8, 1.0]) == pytest.approx(
        [4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-3
    )


def test_msprt_lambda_equals_johari_balanced_form():
    n, v, tau2, d = 500, 0.18, 0.0004, 0.03
    expected = math.sqrt(v / (v + n * tau2)) * math.exp(n**2 * tau2 * d**2 / (2 * v * (v + n * tau2)))
    assert float(stats.msprt_lambda(d, v / n, tau2)) == pytest.approx(expected, rel=1e-12)


def test_bad_parameters_are_named():
    with pytest.raises(InvalidParameterError, match="alternative"):
        stats.two_proportion_ztest(1, 10, 2, 10, alternative="bigger")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="arm b"):
        stats.two_proportion_ztest(1, 10, 12, 10)
    with pytest.raises(InvalidParameterError, match="information_fractions"):
        stats.obrien_fleming_boundaries([0.5, 0.3, 1.0])


# -- peeking --------------------------------------------------------------------------------------------

RUNS, N, LOOKS, ALPHA, RATE = 400, 2000, 20, 0.05, 0.1


def _aa_runs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random((RUNS, N)) < RATE).astype(float), (rng.random((RUNS, N)) < RATE).astype(float)


def test_peeking_20_times_at_a_fixed_sample_z_test_inflates_false_positives():
    a, b = _aa_runs(11)
    looks = np.linspace(N / LOOKS, N, LOOKS).astype(int)
    xa, xb = np.cumsum(a, axis=1)[:, looks - 1], np.cumsum(b, axis=1)[:, looks - 1]
    pooled = (xa + xb) / (2 * looks)
    z = (xb - xa) / looks / np.sqrt(pooled * (1 - pooled) * 2 / looks)
    rejected = (2 * sps.norm.sf(np.abs(z)) <= ALPHA).any(axis=1)
    assert rejected.mean() > ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)  # ~0.2-0.25 in practice


def test_msprt_keeps_false_positives_within_alpha_under_continuous_peeking():
    # Always-valid p-values are min over *every* prefix (continuous peeking, a superset of 20 looks).
    a, b = _aa_runs(12)
    rejected = np.array([stats.msprt_proportions(a[i], b[i]).p_value <= ALPHA for i in range(RUNS)])
    assert rejected.mean() <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_msprt_keeps_false_positives_within_alpha_for_a_small_arm_and_rare_events():
    # A 5 % canary with a 1 % error rate: the case where an unpooled plug-in variance fails.
    rng = np.random.default_rng(15)
    a, b = (rng.random((RUNS, 9500)) < 0.01).astype(float), (rng.random((RUNS, 500)) < 0.01).astype(float)
    rejected = np.array([stats.msprt_proportions(a[i], b[i]).p_value <= ALPHA for i in range(RUNS)])
    assert rejected.mean() <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_msprt_detects_a_real_difference():
    rng = np.random.default_rng(13)
    a, b = (rng.random(4000) < 0.10).astype(float), (rng.random(4000) < 0.14).astype(float)
    assert stats.msprt_proportions(a, b).p_value < 0.01
    x, y = rng.normal(0.20, 0.05, 3000), rng.normal(0.21, 0.05, 3000)
    assert stats.msprt_means(x, y).p_value < 0.01


def test_msprt_means_keeps_false_positives_within_alpha():
    rng = np.random.default_rng(14)
    a, b = rng.gamma(3.0, 0.05, (RUNS, 1000)), rng.gamma(3.0, 0.05, (RUNS, 1000))
    rejected = np.array([stats.msprt_means(a[i], b[i]).p_value <= ALPHA for i in range(RUNS)])
    assert rejected.mean() <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)
