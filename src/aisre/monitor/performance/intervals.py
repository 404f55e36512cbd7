"""Metric values with confidence intervals: Wilson score, vectorised bootstrap, DeLong.

Every statistic here works on a *batch of resamples* at once: row arrays of shape (B, n)
reduced along the last axis, or confusion counts of shape (B, k, k). The point estimate is
the same function on the full sample, so point and interval never disagree on a formula.
Undefined values (a zero denominator, a single-class AUC) are NaN, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from aisre.errors import InvalidParameterError

# Bound the size of one block of resampled indices (cells = resamples x rows), ~16 MB.
_MAX_CELLS = 2_000_000


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric over one sample: `value` and its `confidence` interval [`lower`, `upper`].

    `n` is the number of rows the metric used (after dropping missing values); `method` is
    `wilson`, `bootstrap`, `delong`, `poisson_bootstrap` (on a Spark/Dask frame) or `none`; `note` says
    why a value is NaN, if it is.
    """

    name: str
    value: float
    lower: float
    upper: float
    n: int
    method: str
    confidence: float
    note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile for a confidence level in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise InvalidParameterError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    return float(ndtri(0.5 + confidence / 2.0))


def wilson(successes: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion successes/trials; (nan, nan) when trials == 0.

    center = (p + z²/2n) / (1 + z²/n); half = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    """
    if trials <= 0:
        return (np.nan, np.nan)
    z = z_value(confidence)
    p = successes / trials
    denom = 1.0 + z * z / trials
    center = (p + z * z / (2.0 * trials)) / denom
    half = z / denom * np.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials))
    return (float(max(0.0, center - half)), float(min(1.0, center + half)))


def bootstrap(
    statistic: Callable[..., np.ndarray],
    arrays: tuple[np.ndarray, ...],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float, int]:
    """Percentile bootstrap interval of `statistic` over rows of `arrays`.

    `statistic(*batch)` receives each array indexed by a (B, n) matrix of row indices and
    returns B values. Resamples are drawn in blocks of at most ~2 million cells, so memory
    stays bounded and there is no Python loop per resample. NaN resample values (e.g. a
    single-class resample for AUC) are left out; returns (lower, upper, valid resamples).
    """
    if n_resamples < 1:
        raise InvalidParameterError(f"n_resamples: expected an integer >= 1, got {n_resamples!r}")
    n = len(arrays[0])
    if n == 0:
        return (np.nan, np.nan, 0)
    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _MAX_CELLS // n))
    values = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        values[start:stop] = statistic(*(a[idx] for a in arrays))
    return _percentile_interval(values, confidence)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """(lower, upper, resamples used) of the central `confidence` share; NaN resamples are left out."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (np.nan, np.nan, 0)
    alpha = 1.0 - confidence
    lower, upper = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lower), float(upper), int(values.size))


def point(statistic: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...]) -> float:
    """The statistic on the full sample (a batch of one resample)."""
    if len(arrays[0]) == 0:
        return np.nan
    return float(statistic(*(a[np.newaxis, :] for a in arrays))[0])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def bootstrap_counts(
    statistic: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float, int]:
    """Percentile bootstrap of a statistic of cell counts (a confusion matrix).

    Resampling n rows with replacement and counting them into cells is exactly a
    multinomial draw of n over the observed cell frequencies, so the resamples are drawn
    as a (B, cells) count matrix: O(B · cells) work instead of O(B · n). `statistic`
    receives counts of shape (B, *counts.shape) and returns B values.
    """
    if n_resamples < 1:
        raise InvalidParameterError(f"n_resamples: expected an integer >= 1, got {n_resamples!r}")
    n = int(counts.sum())
    if n == 0:
        return (np.nan, np.nan, 0)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts.reshape(-1) / n, size=n_resamples).reshape(n_resamples, *counts.shape)
    values = statistic(draws)
    return _percentile_interval(values, confidence)


# -- statistics of confusion counts: (..., k, k) rows = truth, columns = prediction -------------
def confusion(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """k x k confusion counts of integer class codes (rows truth, columns prediction)."""
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.float64)


def f1_binary(cm: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of the positive class (index 1); NaN when all three are 0."""
    tp, fp, fn = cm[..., 1, 1], cm[..., 0, 1], cm[..., 1, 0]
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _macro(per_class: np.ndarray) -> np.ndarray:
    # Classes whose value is undefined (absent, or zero denominator) are left out of the
    # mean, as scikit-learn does with zero_division=np.nan.
    valid = ~np.isnan(per_class)
    total = np.where(valid, per_class, 0.0).sum(axis=-1)
    return _ratio(total, valid.sum(axis=-1))


def _diagonal(cm: np.ndarray) -> np.ndarray:
    return np.diagonal(cm, axis1=-2, axis2=-1)


def macro_precision(cm: np.ndarray) -> np.ndarray:
    return _macro(_ratio(_diagonal(cm), cm.sum(axis=-2)))


def macro_recall(cm: np.ndarray) -> np.ndarray:
    return _macro(_ratio(_diagonal(cm), cm.sum(axis=-1)))


def macro_f1(cm: np.ndarray) -> np.ndarray:
    return _macro(_ratio(2 * _diagonal(cm), cm.sum(axis=-1) + cm.sum(axis=-2)))


def auc_binary(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC AUC as the Mann-Whitney U / (n1 n0), ties counted half (average ranks)."""
    ranks = rankdata(s, axis=-1)
    n1 = np.count_nonzero(t, axis=-1).astype(np.float64)
    n0 = t.shape[-1] - n1
    u = np.where(t, ranks, 0.0).sum(axis=-1) - n1 * (n1 + 1.0) / 2.0
    return _ratio(u, n1 * n0)


def auc_ovr_macro(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest AUC over the score columns; `s` has shape (B, n, k)."""
    k = s.shape[-1]
    per_class = np.stack([auc_binary(t == c, s[..., c]) for c in range(k)], axis=-1)
    return _macro(per_class)


def mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=-1)


def root_mean(values: np.ndarray) -> np.ndarray:
    return np.sqrt(values.mean(axis=-1))


def r2(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Coefficient of determination 1 - SS_res / SS_tot along the last axis; NaN where y is constant."""
    ss_res = ((y - yhat) ** 2).sum(axis=-1)
    ss_tot = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    return 1.0 - _ratio(ss_res, ss_tot)


# -- DeLong --------------------------------------------------------------------------------
def delong_interval(t: np.ndarray, s: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """ROC AUC and its DeLong (1988) interval, via the midrank algorithm of Sun & Xu (2014).

    Returns (auc, lower, upper); the interval is auc ± z·sqrt(var), clipped to [0, 1], and
    NaN when either class has fewer than 2 rows (the variance is undefined).
    """
    pos, neg = s[t], s[~t]
    n1, n0 = pos.size, neg.size
    if n1 == 0 or n0 == 0:
        return (np.nan, np.nan, np.nan)
    all_ranks = rankdata(np.concatenate([pos, neg]))
    auc = (all_ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    if n1 < 2 or n0 < 2:
        return (float(auc), np.nan, np.nan)
    v10 = (all_ranks[:n1] - rankdata(pos)) / n0
    v01 = 1.0 - (all_ranks[n1:] - rankdata(neg)) / n1
    var = v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0
    half = z_value(confidence) * np.sqrt(var)
    return (float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half)))
