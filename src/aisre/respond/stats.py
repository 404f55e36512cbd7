"""The statistics that judge shadow, canary and A/B traffic: tests, effect sizes, sequential tests.

Convention everywhere: arm **a** is the control (stable, primary, A) and arm **b** the
treatment (canary, shadow, B); every effect is **b - a** and `alternative="greater"` means
"b is larger than a". Formulas are written out in each docstring and in
docs/statistics-experiments.md, with references.

- `two_proportion_ztest`: pooled z-test (equals statsmodels' `proportions_ztest`).
- `welch_ttest`: Welch's unequal-variance t-test (equals `scipy.stats.ttest_ind(equal_var=False)`).
- `proportion_difference`, `mean_difference`, `relative_lift`: effects with confidence intervals
  (Newcombe hybrid score or Wald; Welch-Satterthwaite; Katz log / delta method).
- `msprt`: the mixture sequential probability ratio test (always-valid p-values, Johari et
  al. 2017) over every prefix of the data, so looking at it any number of times is safe.
- `obrien_fleming_boundaries`: Lan-DeMets O'Brien-Fleming-type alpha spending for planned looks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from aisre.errors import InvalidParameterError
from aisre.monitor.performance.intervals import wilson, z_value

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True, slots=True)
class TestResult:
    """A hypothesis test: `statistic` (z or t), its `p_value`, the `alternative` tested (about b - a),
    degrees of freedom `df` (t-tests; None for z) and the `method` name."""

    statistic: float
    p_value: float
    alternative: str
    method: str
    df: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Effect:
    """An effect b - a (or a relative lift b / a - 1) with its `confidence` interval [`lower`, `upper`]."""

    estimate: float
    lower: float
    upper: float
    confidence: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise InvalidParameterError(f"alternative: expected one of {list(_ALTERNATIVES)}, got {alternative!r}")


def _check_counts(successes: float, trials: float, arm: str) -> None:
    if not (trials >= 0 and 0 <= successes <= trials):
        raise InvalidParameterError(f"arm {arm}: expected 0 <= successes <= trials, got {successes}/{trials}")


def _p_from_z(z: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2.0 * sps.norm.sf(abs(z)))
    return float(sps.norm.sf(z) if alternative == "greater" else sps.norm.cdf(z))


def two_proportion_ztest(
    successes_a: float, trials_a: float, successes_b: float, trials_b: float, alternative: Alternative = "two-sided"
) -> TestResult:
    """Pooled two-proportion z-test of p_b = p_a.

    p̂ = (x_a + x_b) / (n_a + n_b);  z = (x_b/n_b - x_a/n_a) / sqrt(p̂ (1 - p̂) (1/n_a + 1/n_b));
    p = 2 Φ(-|z|) (two-sided), 1 - Φ(z) ("greater": p_b > p_a), Φ(z) ("less").
    Equals statsmodels `proportions_ztest([x_b, x_a], [n_b, n_a])`. NaN when an arm is empty
    or when every trial (or none) is a success (the pooled variance is 0).
    Reference: Fleiss, Levin & Paik, Statistical Methods for Rates and Proportions (3rd ed.), §2.
    """
    _check_alternative(alternative)
    _check_counts(successes_a, trials_a, "a")
    _check_counts(successes_b, trials_b, "b")
    if trials_a == 0 or trials_b == 0:
        return TestResult(math.nan, math.nan, alternative, "two_proportion_ztest")
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / trials_a + 1.0 / trials_b))
    if se == 0.0:
        return TestResult(math.nan, math.nan, alternative, "two_proportion_ztest")
    z = (successes_b / trials_b - successes_a / trials_a) / se
    return TestResult(float(z), _p_from_z(z, alternative), alternative, "two_proportion_ztest")


def _summary(values: Any, arm: str) -> tuple[float, float, int]:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan, math.nan, int(x.size))
    return float(x.mean()), float(x.var(ddof=1)), int(x.size)


def welch_ttest(a: Any, b: Any, alternative: Alternative = "two-sided") -> TestResult:
    """Welch's t-test of mean_b = mean_a, variances not assumed equal (NaN/inf values dropped).

    t = (m_b - m_a) / sqrt(s_a²/n_a + s_b²/n_b), with Welch-Satterthwaite degrees of freedom
    ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a - 1) + (s_b²/n_b)²/(n_b - 1)).
    Equals `scipy.stats.ttest_ind(b, a, equal_var=False, alternative=...)`.
    Reference: Welch (1947), Biometrika 34:28-35.
    """
    m_a, v_a, n_a = _summary(a, "a")
    m_b, v_b, n_b = _summary(b, "b")
    return welch_ttest_from_stats(m_a, v_a, n_a, m_b, v_b, n_b, alternative)


def welch_ttest_from_stats(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """`welch_ttest` from summaries (sample variances with ddof=1); NaN with fewer than 2 values an arm."""
    _check_alternative(alternative)
    if n_a < 2 or n_b < 2:
        return TestResult(math.nan, math.nan, alternative, "welch_ttest")
    se2_a, se2_b = var_a / n_a, var_b / n_b
    se = math.sqrt(se2_a + se2_b)
    if se == 0.0:
        return TestResult(math.nan, math.nan, alternative, "welch_ttest")
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (n_a - 1) + se2_b**2 / (n_b - 1))
    t = (mean_b - mean_a) / se
    if alternative == "two-sided":
        p = 2.0 * sps.t.sf(abs(t), df)
    else:
        p = sps.t.sf(t, df) if alternative == "greater" else sps.t.cdf(t, df)
    return TestResult(float(t), float(p), alternative, "welch_ttest", float(df))


def proportion_difference(
    successes_a: float,
    trials_a: float,
    successes_b: float,
    trials_b: float,
    confidence: float = 0.95,
    method: Literal["newcombe", "wald"] = "newcombe",
) -> Effect:
    """p_b - p_a with a confidence interval.

    "newcombe" (default; Newcombe 1998, method 10, the hybrid score interval): with Wilson
    intervals [l_a, u_a] and [l_b, u_b] of each arm and d = p_b - p_a,
    lower = d - sqrt((p_b - l_b)² + (u_a - p_a)²), upper = d + sqrt((u_b - p_b)² + (p_a - l_a)²).
    It keeps its coverage near 0 and 1 (error rates of 0.1 %), where Wald's collapses.
    "wald": d ± z sqrt(p_a(1 - p_a)/n_a + p_b(1 - p_b)/n_b).
    Reference: Newcombe RG (1998), Statistics in Medicine 17:873-890.
    """
    _check_counts(successes_a, trials_a, "a")
    _check_counts(successes_b, trials_b, "b")
    if method not in ("newcombe", "wald"):
        raise InvalidParameterError(f"method: expected 'newcombe' or 'wald', got {method!r}")
    if trials_a == 0 or trials_b == 0:
        return Effect(math.nan, math.nan, math.nan, confidence, method)
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    d = p_b - p_a
    if method == "wald":
        half = z_value(confidence) * math.sqrt(p_a * (1 - p_a) / trials_a + p_b * (1 - p_b) / trials_b)
        return Effect(d, d - half, d + half, confidence, method)
    l_a, u_a = wilson(successes_a, trials_a, confidence)
    l_b, u_b = wilson(successes_b, trials_b, confidence)
    lower = d - math.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    upper = d + math.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return Effect(d, lower, upper, confidence, method)


def mean_difference(a: Any, b: Any, confidence: float = 0.95) -> Effect:
    """mean_b - mean_a with the Welch-Satterthwaite interval d ± t_{ν, 1-α/2} sqrt(s_a²/n_a + s_b²/n_b)
    (ν as in `welch_ttest`); equals `scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval()`."""
    m_a, v_a, n_a = _summary(a, "a")
    m_b, v_b, n_b = _summary(b, "b")
    return mean_difference_from_stats(m_a, v_a, n_a, m_b, v_b, n_b, confidence)


def mean_difference_from_stats(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, confidence: float = 0.95
) -> Effect:
    """`mean_difference` from summaries (sample variances with ddof=1)."""
    z_value(confidence)  # validates it
    d = mean_b - mean_a
    if n_a < 2 or n_b < 2:
        return Effect(d, math.nan, math.nan, confidence, "welch_satterthwaite")
    se2_a, se2_b = var_a / n_a, var_b / n_b
    se = math.sqrt(se2_a + se2_b)
    if se == 0.0:
        return Effect(d, d, d, confidence, "welch_satterthwaite")
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (n_a - 1) + se2_b**2 / (n_b - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2.0, df)) * se
    return Effect(d, d - half, d + half, confidence, "welch_satterthwaite")


def relative_lift(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, confidence: float = 0.95
) -> Effect:
    """Relative lift mean_b / mean_a - 1 with an interval from the log ratio (delta method):
    Var(log m_b - log m_a) ≈ s_b²/(n_b m_b²) + s_a²/(n_a m_a²); interval exp(log r ± z se) - 1.
    For proportions pass var = p(1 - p) (with n/(n-1) ignored): this is the Katz log interval of a
    risk ratio. NaN when a mean is not positive. Reference: Katz et al. (1978), Biometrics 34:469-474.
    """
    z = z_value(confidence)
    if not (mean_a > 0 and mean_b > 0) or n_a < 1 or n_b < 1:
        return Effect(math.nan, math.nan, math.nan, confidence, "log_ratio_delta")
    log_r = math.log(mean_b / mean_a)
    se = math.sqrt(var_b / (n_b * mean_b**2) + var_a / (n_a * mean_a**2))
    return Effect(
        math.exp(log_r) - 1.0,
        math.exp(log_r - z * se) - 1.0,
        math.exp(log_r + z * se) - 1.0,
        confidence,
        "log_ratio_delta",
    )


# -- sequential ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """An always-valid test over every prefix of the data (every look that could have been made).

    `p_value` is the always-valid p-value after the last observation (min over prefixes of
    1/Λ); rejecting when it is <= alpha keeps the type I error <= alpha however often one
    looks. `looks` counts the prefixes where Λ was defined; `tau2` is the mixing variance
    (in squared units of the effect); `lambda_max` the largest likelihood ratio seen.
    """

    p_value: float
    lambda_max: float
    tau2: float
    looks: int
    method: str = "msprt_normal_mixture"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def msprt_lambda(estimate: Any, variance: Any, tau2: float, theta0: float = 0.0) -> np.ndarray:
    """Normal-mixture likelihood ratio of an estimate d̂ ~ N(θ, s²) for H0: θ = θ0 against a
    mixture θ ~ N(θ0, τ²):  Λ = sqrt(s² / (s² + τ²)) · exp(τ² (d̂ - θ0)² / (2 s² (s² + τ²))).

    With s² = V/n (V = σ_a² + σ_b², n per arm) this is Johari et al.'s
    Λ_n = sqrt(V / (V + nτ²)) · exp(n²τ² (d̂ - θ0)² / (2V (V + nτ²))). Vectorised over arrays;
    NaN where s² is not positive.
    """
    d = np.asarray(estimate, dtype=float) - theta0
    s2 = np.asarray(variance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.sqrt(s2 / (s2 + tau2)) * np.exp(tau2 * d * d / (2.0 * s2 * (s2 + tau2)))
    return np.where(s2 > 0, out, np.nan)


def _always_valid(lam: np.ndarray, tau2: float) -> SequentialResult:
    finite = lam[np.isfinite(lam) | np.isposinf(lam)]
    finite = finite[~np.isnan(finite)]
    if finite.size == 0:
        return SequentialResult(1.0, math.nan, tau2, 0)
    top = float(finite.max())
    return SequentialResult(float(min(1.0, 1.0 / top)) if top > 0 else 1.0, top, tau2, int(finite.size))


def interleave(n_a: int, n_b: int) -> np.ndarray:
    """Arrival order of two arms known only in their own order: True where the merged stream takes
    arm b. Observations are merged by relative position (the k-th of n at k/n of the window), which
    is their time order when each arm's traffic is steady; equal arms alternate."""
    position = np.concatenate([np.arange(1, n_a + 1) / max(n_a, 1), np.arange(1, n_b + 1) / max(n_b, 1)])
    return np.argsort(position, kind="stable") >= n_a


def _prefix_stats(values_a: np.ndarray, values_b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per prefix of the merged stream: n_a, n_b, means and sample variances (ddof=1) of each arm."""
    is_b = interleave(values_a.size, values_b.size)
    merged = np.empty(is_b.size)
    merged[~is_b], merged[is_b] = values_a, values_b
    shift = float(merged.mean())  # centring keeps cumulative sums of squares from cancelling
    x = merged - shift
    out: list[np.ndarray] = []
    for mask in (~is_b, is_b):
        n = np.cumsum(mask).astype(float)
        s1, s2 = np.cumsum(np.where(mask, x, 0.0)), np.cumsum(np.where(mask, x * x, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            m = s1 / n
            v = np.where(n > 1, (s2 - n * m * m) / (n - 1), np.nan)
        out += [n, m + shift, np.maximum(v, 0.0)]
    return tuple(out)


def _msprt(values_a: Any, values_b: Any, tau2: float | None, min_per_arm: int, bernoulli: bool) -> SequentialResult:
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    min_per_arm = max(min_per_arm, 2)
    if min(a.size, b.size) < min_per_arm:
        return SequentialResult(1.0, math.nan, math.nan if tau2 is None else tau2, 0)
    n_a, m_a, v_a, n_b, m_b, v_b = _prefix_stats(a, b)
    if bernoulli:  # pooled Bernoulli variance under H0: stable when one arm is small or events are rare
        pooled = (m_a * n_a + m_b * n_b) / (n_a + n_b)
        v_a = v_b = pooled * (1 - pooled)
    if tau2 is None:
        head = np.concatenate([a[:min_per_arm], b[:min_per_arm]])
        sigma2 = head.mean() * (1 - head.mean()) if bernoulli else head.var(ddof=1)
        tau2 = max(0.1**2 * float(sigma2), 1e-12)
    keep = (n_a >= min_per_arm) & (n_b >= min_per_arm)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = v_a / n_a + v_b / n_b
    lam = msprt_lambda((m_b - m_a)[keep], s2[keep], tau2)
    return _always_valid(lam, tau2)


def msprt_proportions(
    outcomes_a: Any, outcomes_b: Any, tau2: float | None = None, min_per_arm: int = 30
) -> SequentialResult:
    """mSPRT for p_b - p_a on 0/1 outcomes in arrival order, evaluated after every observation.

    At each prefix of the merged stream (`interleave`; arms may differ in size, e.g. a 5 %
    canary): d̂ = p̂_b - p̂_a, s² = p̄(1 - p̄)(1/n_a + 1/n_b) with p̄ the pooled rate (the variance
    under H0, as in the pooled z-test: with a small arm or rare events the unpooled plug-in is
    too noisy and measurably broke the guarantee), Λ = `msprt_lambda`(d̂, s², τ²), from
    `min_per_arm` observations an arm on (prefixes with no event yet have s² = 0 and are skipped).
    `tau2` default: (0.1·σ)², σ² = p̄(1 - p̄) of the first `min_per_arm` of each arm: the prior
    expects standardised effects around 0.1. The estimated variance makes the guarantee
    asymptotic; the false-positive rate is measured in tests/test_respond_stats.py.
    References: Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B tests", KDD (and
    Operations Research 70(3), 2022); Robbins (1970) for the normal mixture.
    """
    return _msprt(outcomes_a, outcomes_b, tau2, min_per_arm, bernoulli=True)


def msprt_means(values_a: Any, values_b: Any, tau2: float | None = None, min_per_arm: int = 30) -> SequentialResult:
    """mSPRT for mean_b - mean_a on real values in arrival order (merged as in `msprt_proportions`):
    d̂ = m_b - m_a, s² = s_a²/n_a + s_b²/n_b with running sample variances. `tau2` default (0.1·σ)²,
    σ² the variance of the first `min_per_arm` values of each arm (units: squared units of the values)."""
    return _msprt(values_a, values_b, tau2, min_per_arm, bernoulli=False)


def obrien_fleming_boundaries(information_fractions: Any, alpha: float = 0.05) -> np.ndarray:
    """Symmetric two-sided z boundaries of the Lan-DeMets O'Brien-Fleming-type alpha-spending
    function at increasing information fractions t_1 < ... < t_K = 1: each side spends
    α_side(t) = 2 - 2Φ(z_{1-α/4} / sqrt(t)) of its α/2 (the convention of gsDesign `sfLDOF`
    and ldbounds; for 4 equal looks at α = 0.05: 4.33, 2.96, 2.36, 2.01).

    The boundary c_k is solved so that P(|Z_k| >= c_k, no earlier crossing) = 2(α_side(t_k) - α_side(t_{k-1}))
    under H0, where (Z_1..Z_K) is Brownian motion in information time: Cov(Z_i, Z_j) =
    sqrt(t_i / t_j). Solved by numerical integration on a grid (accurate to ~1e-4 in α).
    Reference: Lan & DeMets (1983), Biometrika 70:659-663.
    """
    t = np.asarray(information_fractions, dtype=float)
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1:
        raise InvalidParameterError(f"information_fractions: expected increasing numbers in (0, 1], got {t.tolist()!r}")
    if not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    spent = 2.0 * (2.0 - 2.0 * sps.norm.cdf(sps.norm.ppf(1 - alpha / 4) / np.sqrt(t)))  # both sides
    grid = np.linspace(-8.0, 8.0, 1601)  # values of the score S = Z sqrt(t) (Brownian motion B(t))
    step = grid[1] - grid[0]
    density = None  # sub-density of B(t_k) on paths that have not crossed yet
    bounds = []
    previous_t, previous_spent = 0.0, 0.0
    for tk, ak in zip(t, spent, strict=True):
        dt = tk - previous_t
        if density is None:
            density = sps.norm.pdf(grid, scale=math.sqrt(dt))
        else:
            kernel = sps.norm.pdf(grid[:, None] - grid[None, :], scale=math.sqrt(dt))
            density = kernel @ density * step
        target = ak - previous_spent
        # the boundary c (on the z scale) with mass outside |B| >= c sqrt(t) equal to target
        mass = density * step
        tail = np.cumsum(mass[::-1])[::-1] - mass / 2.0  # mass of B >= grid[i] (trapezoid at the edge)
        outside = tail[grid >= 0] * 2.0  # symmetric
        cs = grid[grid >= 0] / math.sqrt(tk)
        c = float(np.interp(target, outside[::-1], cs[::-1]))  # `outside` falls as c grows
        bounds.append(c)
        density = np.where(np.abs(grid) < c * math.sqrt(tk), density, 0.0)
        previous_t, previous_spent = tk, ak
    return np.asarray(bounds)
