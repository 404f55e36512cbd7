"""Exact Wasserstein-1 between two samples without sorting them: buckets, sums, finer buckets where
the two CDFs may cross, and a sort of what is left there.

W1 = integral of |D(x)| dx with D = F_a - F_b (both empirical CDFs). Cut [min, max] into B
equal-width buckets. Inside bucket [l, r), D starts at D(l) (from the counts of the
buckets before it) and can only rise by the bucket's a-values and fall by its b-values,
so it stays within [D(l) - count_b/n_b, D(l) + count_a/n_a]. When that interval does not
contain 0, |D| has one sign over the bucket and its integral is exact from counts and sums:

    integral_l^r F_a dx = (r - l) * F_a(l) + sum over a-values x in the bucket of (r - x) / n_a

so the bucket contributes |integral F_a - integral F_b|. Buckets where D may change sign
(near the crossings of the two CDFs; with two samples of the same distribution that is
about a tenth of the values) are cut into finer buckets and the rule applied again, up
to three levels; the few values still in undecided buckets are sorted and integrated
point by point. The result equals scipy.stats.wasserstein_distance to rounding error
(tested, every level), in O(n) passes instead of two O(n log n) sorts: ~30 ms instead of
~200 ms for 10^6 + 10^6 values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aisre.monitor.drift.ecdf import merge

#: About this many pooled values per bucket; mixed buckets then hold a few dozen values.
VALUES_PER_BUCKET = 32
#: Finer levels tried on buckets where D may change sign, and the count below which they are sorted instead.
LEVELS, SORT_BELOW = 3, 4096
#: Values per pass of the bucketing loop (two float buffers of this size stay in cache).
CHUNK = 1 << 16
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
    idx_a, sum_a = _histogram(a, lo, scale, buckets)
    idx_b, sum_b = _histogram(b, lo, scale, buckets)
    count_a = np.bincount(idx_a, minlength=buckets)
    count_b = np.bincount(idx_b, minlength=buckets)
    start = np.zeros(buckets)  # D at each bucket's left edge
    start[1:] = np.cumsum(count_a)[:-1] / n_a - np.cumsum(count_b)[:-1] / n_b
    one_sign = (start - count_b / n_b >= 0) | (start + count_a / n_a <= 0)

    right = (np.arange(buckets) + 1.0) * width
    integral = width * start + (count_a * right - sum_a) / n_a - (count_b * right - sum_b) / n_b
    total = float(np.abs(integral[one_sign]).sum())

    mixed = ~one_sign
    if not mixed.any():
        return total
    left = np.arange(buckets) * width
    rest = _Undecided.select(mixed, a, idx_a, b, idx_b, left, width, start, shift=lo)
    return total + _refine(rest, n_a, n_b, LEVELS)


@dataclass(frozen=True, slots=True)
class _Undecided:
    """Buckets where D may change sign: their left edges, common width and D at the left edge,
    and the (shifted) values of each sample in them with each value's bucket (numbered densely)."""

    values_a: np.ndarray
    bucket_a: np.ndarray
    values_b: np.ndarray
    bucket_b: np.ndarray
    left: np.ndarray
    width: float
    start: np.ndarray

    @classmethod
    def select(
        cls,
        mixed: np.ndarray,
        values_a: np.ndarray,
        key_a: np.ndarray,
        values_b: np.ndarray,
        key_b: np.ndarray,
        left: np.ndarray,
        width: float,
        start: np.ndarray,
        shift: float = 0.0,
    ) -> _Undecided:
        """The `mixed` buckets out of all of them (`key_*`: each value's bucket among all);
        the kept values are shifted by `shift` (only those: no full-size temporary)."""
        rank = np.cumsum(mixed) - 1
        keep_a, keep_b = mixed[key_a], mixed[key_b]
        chosen = np.flatnonzero(mixed)
        return cls(
            values_a[keep_a] - shift,
            rank[key_a[keep_a]],
            values_b[keep_b] - shift,
            rank[key_b[keep_b]],
            left[chosen],
            width,
            start[chosen],
        )


def _histogram(values: np.ndarray, lo: float, scale: float, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket index of every value (int32) and the sum of (value - lo) per bucket.

    In chunks that stay in cache, so a million values cost one 4 MB index array and no
    other full-size temporaries. Shifting by `lo` keeps the sums from cancelling for data
    far from zero (and is exact when values and lo are within a factor of 2). The index
    is monotone in the value, so buckets are ordered like their values.
    """
    n = len(values)
    idx = np.empty(n, dtype=np.int32)
    sums = np.zeros(buckets)
    shifted = np.empty(min(n, CHUNK))
    scaled = np.empty(min(n, CHUNK))
    for i in range(0, n, CHUNK):
        part = values[i : i + CHUNK]
        m = len(part)
        np.subtract(part, lo, out=shifted[:m])
        np.multiply(shifted[:m], scale, out=scaled[:m])
        out = idx[i : i + m]
        np.copyto(out, scaled[:m], casting="unsafe")  # truncation = floor for values >= 0
        np.minimum(out, buckets - 1, out=out)  # the maximum itself lands on the right edge
        sums += np.bincount(out, weights=shifted[:m], minlength=buckets)
    return idx, sums


def _by_sorting(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook computation (scipy's): both CDFs over the pooled sorted sample."""
    m = merge(np.sort(a), np.sort(b))
    return float(np.abs(m.cdf_a[:-1] - m.cdf_b[:-1]) @ np.diff(m.values))


def _refine(u: _Undecided, n_a: int, n_b: int, depth: int) -> float:
    """The integral over the undecided buckets.

    Each bucket is cut into k finer ones and the one-sign rule applied again; only the
    finer buckets that still may change sign go one level down. After `depth` levels, or
    when few values are left, the rest is integrated point by point after a sort.
    """
    n_buckets, n_values = len(u.left), len(u.values_a) + len(u.values_b)
    if depth == 0 or n_values <= SORT_BELOW:
        return _sorted(u, n_a, n_b)
    k = int(np.clip(n_values // (4 * n_buckets), 2, 64))  # about four values per finer bucket
    fine = u.width / k
    key_a, off_a = _finer(u.values_a, u.bucket_a, u.left, k, fine)
    key_b, off_b = _finer(u.values_b, u.bucket_b, u.left, k, fine)
    m = n_buckets * k
    count_a, count_b = np.bincount(key_a, minlength=m), np.bincount(key_b, minlength=m)
    step = (count_a / n_a - count_b / n_b).reshape(n_buckets, k)
    fine_start = (u.start[:, None] + (np.cumsum(step, axis=1) - step)).ravel()
    one_sign = (fine_start - count_b / n_b >= 0) | (fine_start + count_a / n_a <= 0)
    # offsets from each finer bucket's left edge: sum of (right - x) = count * fine - sum of offsets
    sum_a, sum_b = np.bincount(key_a, off_a, minlength=m), np.bincount(key_b, off_b, minlength=m)
    integral = fine * fine_start + (count_a * fine - sum_a) / n_a - (count_b * fine - sum_b) / n_b
    total = float(np.abs(integral[one_sign]).sum())
    mixed = ~one_sign
    if not mixed.any():
        return total
    fine_left = (u.left[:, None] + np.arange(k) * fine).ravel()
    rest = _Undecided.select(mixed, u.values_a, key_a, u.values_b, key_b, fine_left, fine, fine_start)
    return total + _refine(rest, n_a, n_b, depth - 1)


def _finer(
    values: np.ndarray, bucket: np.ndarray, left: np.ndarray, k: int, fine: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each value's finer bucket (bucket * k + local index) and its offset from that bucket's left edge."""
    offset = values - left[bucket]
    local = (offset * (1.0 / fine)).astype(np.intp)
    np.clip(local, 0, k - 1, out=local)  # rounding at the edges stays inside the parent
    return bucket * k + local, offset - local * fine


def _sorted(u: _Undecided, n_a: int, n_b: int) -> float:
    """The exact integral over the undecided buckets: their values sorted, |D| summed step by step."""
    values = np.concatenate([u.values_a, u.values_b])
    steps = np.concatenate([np.full(len(u.values_a), 1.0 / n_a), np.full(len(u.values_b), -1.0 / n_b)])
    which = np.concatenate([u.bucket_a, u.bucket_b])
    order = np.argsort(values, kind="stable")  # bucket order follows value order
    values, steps, which = values[order], steps[order], which[order]

    first = np.ones(len(values), dtype=bool)
    first[1:] = which[1:] != which[:-1]
    last = np.ones(len(values), dtype=bool)
    last[:-1] = first[1:]
    running = np.cumsum(steps)
    group_base = np.maximum.accumulate(np.where(first, np.arange(len(values)), 0))
    before_group = running[group_base] - steps[group_base]
    after = u.start[which] + (running - before_group)  # D just after each value

    left_edge = u.left[which]
    total = float(np.abs(u.start[which[first]]) @ (values[first] - left_edge[first]))  # edge -> first value
    gaps = np.diff(values)
    total += float(np.abs(after[:-1][~last[:-1]]) @ gaps[~last[:-1]])  # between values of a bucket
    total += float(np.abs(after[last]) @ (left_edge[last] + u.width - values[last]))  # last value -> edge
    return total  # (a bucket with no values is never mixed: D is constant over it)
