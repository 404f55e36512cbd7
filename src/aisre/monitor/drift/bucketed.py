"""Exact Wasserstein-1 between two samples without sorting them: buckets, sums, and a sort of the few
buckets where the two CDFs cross.

W1 = integral of |D(x)| dx with D = F_a - F_b (both empirical CDFs). Cut [min, max] into B
equal-width buckets. Inside bucket [l, r), D starts at D(l) (from the counts of the
buckets before it) and can only rise by the bucket's a-values and fall by its b-values,
so it stays within [D(l) - count_b/n_b, D(l) + count_a/n_a]. When that interval does not
contain 0, |D| has one sign over the bucket and its integral is exact from counts and sums:

    integral_l^r F_a dx = (r - l) * F_a(l) + sum over a-values x in the bucket of (r - x) / n_a

so the bucket contributes |integral F_a - integral F_b|. Only buckets where D may change
sign (near the crossings of the two CDFs: a few hundred of ~10^5 buckets for two samples of
10^6) have their values sorted and integrated point by point. The result equals
scipy.stats.wasserstein_distance to rounding error (tested), in O(n) passes instead of two
O(n log n) sorts.
"""

from __future__ import annotations

import numpy as np

#: About this many pooled values per bucket; mixed buckets then hold a handful of values.
VALUES_PER_BUCKET = 8
MIN_BUCKETS, MAX_BUCKETS = 64, 1 << 22


def wasserstein_distance(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between the finite float samples `a` and `b` (both non-empty)."""
    lo = min(float(a.min()), float(b.min()))
    hi = max(float(a.max()), float(b.max()))
    if not hi > lo:
        return 0.0
    n_a, n_b = len(a), len(b)
    buckets = int(np.clip((n_a + n_b) // VALUES_PER_BUCKET, MIN_BUCKETS, MAX_BUCKETS))
    width, scale = (hi - lo) / buckets, buckets / (hi - lo)
    if not (width > 0 and np.isfinite(scale)):  # a range of subnormal numbers: no bucket width exists
        return _by_sorting(a, b)
    # shifted to [0, hi - lo] so that the sums below do not cancel for data far from zero
    a, b = a - lo, b - lo
    idx_a, idx_b = _bucket(a, buckets, scale), _bucket(b, buckets, scale)
    count_a = np.bincount(idx_a, minlength=buckets)
    count_b = np.bincount(idx_b, minlength=buckets)
    start = np.zeros(buckets)  # D at each bucket's left edge
    start[1:] = np.cumsum(count_a)[:-1] / n_a - np.cumsum(count_b)[:-1] / n_b
    one_sign = (start - count_b / n_b >= 0) | (start + count_a / n_a <= 0)

    right = (np.arange(buckets) + 1.0) * width
    sum_a = np.bincount(idx_a, weights=a, minlength=buckets)
    sum_b = np.bincount(idx_b, weights=b, minlength=buckets)
    integral = width * start + (count_a * right - sum_a) / n_a - (count_b * right - sum_b) / n_b
    total = float(np.abs(integral[one_sign]).sum())

    mixed = ~one_sign
    if mixed.any():
        total += _mixed_buckets(a, idx_a, b, idx_b, mixed, start, width, n_a, n_b)
    return total


def _by_sorting(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook computation (scipy's): both CDFs at every pooled value, by sorting."""
    pooled = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), pooled[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), pooled[:-1], side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b) @ np.diff(pooled))


def _bucket(values: np.ndarray, buckets: int, scale: float) -> np.ndarray:
    """Bucket index of each shifted value; monotone in the value, so buckets are ordered."""
    idx = (values * scale).astype(np.intp)
    np.minimum(idx, buckets - 1, out=idx)  # the maximum itself lands on the right edge
    return idx


def _mixed_buckets(
    a: np.ndarray,
    idx_a: np.ndarray,
    b: np.ndarray,
    idx_b: np.ndarray,
    mixed: np.ndarray,
    start: np.ndarray,
    width: float,
    n_a: int,
    n_b: int,
) -> float:
    """The exact integral over the buckets where D may change sign: their values sorted, step by step."""
    in_a, in_b = mixed[idx_a], mixed[idx_b]
    values = np.concatenate([a[in_a], b[in_b]])
    steps = np.concatenate([np.full(int(in_a.sum()), 1.0 / n_a), np.full(int(in_b.sum()), -1.0 / n_b)])
    which = np.concatenate([idx_a[in_a], idx_b[in_b]])
    order = np.argsort(values, kind="stable")  # bucket order follows value order
    values, steps, which = values[order], steps[order], which[order]

    first = np.ones(len(values), dtype=bool)
    first[1:] = which[1:] != which[:-1]
    last = np.ones(len(values), dtype=bool)
    last[:-1] = first[1:]
    running = np.cumsum(steps)
    group_base = np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))
    before_group = running[group_base] - steps[group_base]
    after = start[which] + (running - before_group)  # D just after each value

    left_edge = which * width
    total = float(np.abs(start[which[first]]) @ (values[first] - left_edge[first]))  # edge -> first value
    gaps = np.diff(values)
    total += float(np.abs(after[:-1][~last[:-1]]) @ gaps[~last[:-1]])  # between values of a bucket
    total += float(np.abs(after[last]) @ (left_edge[last] + width - values[last]))  # last value -> edge
    return total  # (a bucket with no values is never mixed: D is constant over it)
