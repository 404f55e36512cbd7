"""Statistics from merged counts: raw-value tests (KS, Wasserstein) with a proven error bound, and the
count tests (chi-square, Z) exactly as the one-machine methods compute them.

KS and Wasserstein need the two empirical CDFs, which a profile does not keep. They are read
off a fine grid instead: both windows are counted over the same edges (up to 4,096 bins: 512
KLL quantiles of each window, each gap cut in 4 equal-width parts), and at every edge both CDFs are
exact. Inside bin j, D = F_ref - F_cur starts at D_j and can only rise by the bin's reference
share a_j and fall by its current share b_j, so

    KS:  max_j |D_j|  <=  D  <=  max_j max(|D_j - b_j|, |D_j + a_j|)
    W1:  sum_j w_j * dist(0, [D_j - b_j, D_j + a_j])  <=  W1  <=  sum_j w_j * max(|D_j - b_j|, |D_j + a_j|)

(w_j the bin's width inside [min, max] of both windows). With the sum of the values in each bin,
a bin where D keeps one sign is integrated exactly (as monitor/drift/bucketed.py does), and one
where D may cross 0 lies between |integral of D| and w_j * max |D|. The estimate is the middle of
the KS interval and, for W1, sum_j |integral of D over bin j| (exact unless D changes sign inside a
bin, where it is the interval's lower end); the reported
`error_bound` is the largest distance from the estimate to either end, a bound that holds for
every input, computed from the counts of this run. docs/statistics-distributed.md has the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aisre.monitor.drift.stattests import KS_EXACT_MAX_N

#: Grid: this many reference quantiles from the KLL sketch, each interval cut into SPLIT equal parts.
GRID_QUANTILES, SPLIT = 512, 4
#: The TAIL_GAPS outermost gaps at each end are cut into TAIL_SPLIT parts instead.
TAIL_GAPS, TAIL_SPLIT = 4, 64


@dataclass(frozen=True)
class Bounded:
    """An estimate and an interval that surely holds the exact value."""

    estimate: float
    lower: float
    upper: float

    @property
    def error_bound(self) -> float:
        return max(self.estimate - self.lower, self.upper - self.estimate)


def grid_edges(sketch_quantiles: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Sorted unique finite edges: each gap between sketch quantiles (of both windows) cut in SPLIT parts, plus `extra`
    (the exact decile edges of the histogram methods), closed by +inf (the profile's last inner bin is
    closed, so +inf keeps every finite value >= the last edge in one bin with the drift bins' meaning)."""
    q = np.unique(sketch_quantiles[np.isfinite(sketch_quantiles)])
    if len(q) > 1:
        steps = np.linspace(0.0, 1.0, SPLIT, endpoint=False)
        parts = [(q[:-1, None] + np.diff(q)[:, None] * steps).ravel(), q]
        # the outermost gaps of a long tail are wide: cut finer there, where a bin's width * share is largest
        tail = np.linspace(0.0, 1.0, TAIL_SPLIT, endpoint=False)
        for lo, hi in [
            *zip(q[:TAIL_GAPS], q[1 : TAIL_GAPS + 1], strict=False),
            *zip(q[-TAIL_GAPS - 1 : -1], q[-TAIL_GAPS:], strict=False),
        ]:
            parts.append(lo + (hi - lo) * tail)
        q = np.unique(np.concatenate(parts))
    return np.concatenate([np.unique(np.concatenate([q, extra])), [np.inf]])


def _cdf_steps(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares per bin (a, b) and D at each bin's left edge."""
    a, b = ref / ref.sum(), cur / cur.sum()
    d = np.concatenate([[0.0], np.cumsum(a)[:-1] - np.cumsum(b)[:-1]])
    return a, b, d


def ks_bounded(ref: np.ndarray, cur: np.ndarray) -> Bounded:
    """Two-sample KS D from counts over the same bins (finite values only)."""
    a, b, d = _cdf_steps(ref, cur)
    lower = float(np.max(np.abs(d))) if len(d) else 0.0
    upper = float(np.max(np.maximum(np.abs(d - b), np.abs(d + a))))
    return Bounded((lower + upper) / 2, lower, upper)


def ks_p_value(d: float, n_ref: int, n_cur: int) -> float:
    """The p-value scipy.stats.ks_2samp(method="auto") gives for D (exact up to 10,000 values a side)."""
    if max(n_ref, n_cur) <= KS_EXACT_MAX_N:
        try:  # scipy's own exact computation, given D
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            success, _, p = _attempt_exact_2kssamp(n_ref, n_cur, math.gcd(n_ref, n_cur), d, "two-sided")
            if success:
                return float(np.clip(p, 0, 1))
        except (ImportError, TypeError, ValueError):  # scipy moved its private helper: asymptotic below
            pass
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def wasserstein_bounded(
    ref: np.ndarray,
    cur: np.ndarray,
    edges: np.ndarray,
    lo: float,
    hi: float,
    ref_sums: np.ndarray | None = None,
    cur_sums: np.ndarray | None = None,
) -> Bounded:
    """W1 from counts over bins [-inf, e0), [e0, e1), ..., [e_last, inf]; `lo`/`hi` the overall min and max.

    With the sum of each bin's values (`*_sums`) a bin where D keeps one sign contributes exactly
    (bucketed.py's rule: integral of F over [l, r) = (r - l) F(l) + sum over its values of (r - x) / n),
    and a bin where D may cross 0 lies between |integral of D| and width * max |D|.
    """
    cuts = np.clip(np.concatenate([[lo], edges[:-1], [hi]]), lo, hi)
    width = np.diff(cuts)
    k = len(width)
    a, b, d = _cdf_steps(ref[:k], cur[:k])
    top = width * np.maximum(np.abs(d - b), np.abs(d + a))
    one_sign = (d - b >= 0) | (d + a <= 0)
    bottom = width * np.where(one_sign, np.minimum(np.abs(d - b), np.abs(d + a)), 0.0)
    d_next = d + a - b
    same = d * d_next >= 0
    total = np.abs(d) + np.abs(d_next)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(total > 0, (d * d + d_next * d_next) / (2 * total), 0.0)
    estimate = width * np.where(same, total / 2, crossing)  # D linear across the bin
    if ref_sums is not None and cur_sums is not None:
        right = cuts[1:]
        n_a, n_b = ref[:k].sum(), cur[:k].sum()
        signed = width * d + (ref[:k] * right - ref_sums[:k]) / n_a - (cur[:k] * right - cur_sums[:k]) / n_b
        exact = np.abs(signed)
        bottom = np.where(one_sign, exact, np.maximum(bottom, exact))
        top = np.where(one_sign, exact, top)
        estimate = exact  # also exact in a crossing bin unless D really changes sign inside it (then a lower bound)
    return Bounded(float(estimate.sum()), float(bottom.sum()), float(top.sum()))


def exact_from_values(ref: dict[float, int], cur: dict[float, int]) -> tuple[float, float]:
    """(KS D, W1) exactly, for columns known by their value counts (few distinct values): both ECDFs
    are step functions over the distinct values, so D is their largest gap and W1 the area between."""
    labels = np.array(sorted(set(ref) | set(cur)))
    fa = np.cumsum([ref.get(v, 0) for v in labels]) / sum(ref.values())
    fb = np.cumsum([cur.get(v, 0) for v in labels]) / sum(cur.values())
    d = np.abs(fa - fb)
    return float(d.max()), float(d[:-1] @ np.diff(labels))


def chisquare_from_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, bool]:
    """ChiSquare's statistic and p over aligned counts: (statistic, p, some current category unseen)."""
    n_ref, n_cur = ref.sum(), cur.sum()
    expected = ref * (n_cur / n_ref)
    if (expected == 0).any():
        return math.inf, 0.0, True
    if len(ref) < 2:
        return 0.0, 1.0, False
    statistic = float(np.sum((cur - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, len(ref) - 1)), False


def z_from_counts(labels: list, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """ZTest's two-proportion z and p: the first label in sorted order vs all others."""
    if len(labels) == 1:
        return 0.0, 1.0
    first = labels.index(sorted(labels)[0])
    n1, n2 = int(ref.sum()), int(cur.sum())
    p1 = float(n1 - ref[first]) / n1
    p2 = float(n2 - cur[first]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(z), float(2 * stats.norm.sf(np.abs(z)))


def rank_positions(n: int, n_bins: int) -> np.ndarray:
    """0-based ranks of the inner quantile edges `quantile_edges(values, n_bins)` picks among n sorted
    values (numpy's inverted_cdf: index ceil(n p) - 1)."""
    probs = np.arange(1, n_bins) / n_bins
    return np.maximum(np.ceil(n * probs) - 1, 0).astype(np.int64)


def values_at_ranks(values: dict[float, int], ranks: np.ndarray) -> np.ndarray:
    """The values at `ranks` of a column known by exact value counts."""
    labels = np.array(sorted(values))
    ends = np.cumsum([values[v] for v in labels])  # rank r holds the first label whose end > r
    return labels[np.searchsorted(ends, ranks, side="right")]
