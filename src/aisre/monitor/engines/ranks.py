"""Anderson-Darling and Cramer-von Mises from merged (value -> reference count, current count) tables.

Both tests see the data only through the pooled ranks with ties (midranks), so a table of the
distinct values with each window's count gives them exactly. The formulas are scipy's, rewritten
over distinct values instead of rows:

- `anderson_ksamp` (k = 2, midrank; Scholz and Stephens 1987, eq. 7): per distinct value j the
  pooled count l_j, B_j = (pooled count below) + l_j / 2, and per window i M_ij = (its count up to
  and including j) - f_ij / 2. These are the very arrays scipy builds, so the statistic, its
  normalisation (h, g: harmonic sums over N, computed in chunks for large N) and the p-value
  interpolated from Scholz and Stephens' table are the same floating-point operations.
- `cramervonmises_2samp`: U = nx sum_i (r_i - i)^2 + ny sum_j (s_j - j)^2 over each window's
  sorted values and their pooled midranks. The x values tied at one distinct value share the
  midrank r and hold consecutive positions A+1..A+a, so their part is
  a (r - A - (a+1)/2)^2 + a (a^2 - 1) / 12, a sum of two non-negative terms, evaluated in
  integers (4U is an integer); T and the asymptotic p-value then follow scipy line by line.

With more distinct values than the cap, the same formulas run over the fine grid's bins (values
in one bin treated as tied): an approximation whose error is measured, not bounded (see
docs/statistics-distributed.md).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np
from scipy import special

from aisre.errors import DataError
from aisre.monitor.engines.partition import NumericPart

#: Below this many values in both windows together the raw samples are rebuilt from the table and the
#: one-machine method runs on them (scipy's exact Cramer-von Mises p-value enumerates arrangements).
SMALL_N = 64
#: The note on a result computed over grid bins (the measured errors are in docs/statistics-distributed.md).
GRID_NOTE = (
    "more than {limit:,} distinct values in a window (at least {distinct:,} seen): statistic and p-value computed "
    "over the fine grid's bins, values inside one bin treated as tied; not exact and without a proven error bound "
    "(errors measured against one machine: docs/statistics-distributed.md)"
)
#: Harmonic sums of the Anderson-Darling normalisation are built in chunks of this many terms.
_CHUNK = 1 << 20


def anderson(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(A2 standardised, p) of scipy.stats.anderson_ksamp([ref, cur]) (midrank), from counts per sorted value."""
    n = np.array([int(ref.sum()), int(cur.sum())])
    big_n = int(n.sum())
    pooled = ref + cur
    left = np.cumsum(pooled) - pooled
    lj: Any = 1.0 if big_n == len(pooled) else pooled
    bj = left + lj / 2.0
    a2akn = 0.0
    for i, counts in enumerate((ref, cur)):
        mij = np.cumsum(counts).astype(float)
        mij -= counts / 2.0
        inner = lj / float(big_n) * (big_n * mij - bj * n[i]) ** 2 / (bj * (big_n - bj) - big_n * lj / 4.0)
        a2akn += inner.sum() / n[i]
    a2akn *= (big_n - 1.0) / big_n
    k = 2
    h, g = _harmonics(big_n)
    big_h = (1.0 / n).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * big_h
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * big_h - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * big_h + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    sigmasq = (a * big_n**3 + b * big_n**2 + c * big_n + d) / ((big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0))
    m = k - 1
    a2 = (a2akn - m) / math.sqrt(sigmasq)
    # Scholz and Stephens 1987, Table 2, as scipy interpolates it (log p quadratic in the critical value)
    b0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
    b1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
    b2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
    critical = b0 + b1 / math.sqrt(m) + b2 / m
    sig = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
    if a2 < critical.min():
        p = float(sig.max())
    elif a2 > critical.max():
        p = float(sig.min())
    else:
        pf = np.polyfit(critical, np.log(sig), 2)
        p = math.exp(np.polyval(pf, a2))
    return float(a2), p


@functools.lru_cache(maxsize=16)  # one N per window pair, shared by its columns
def _harmonics(big_n: int) -> tuple[float, float]:
    """(h, g) of anderson_ksamp: hs_cs = cumsum(1 / (N-1, ..., 2)), h = hs_cs[-1] + 1,
    g = sum(hs_cs / (2, ..., N-1)); in chunks (same running sum) so a billion rows need no N-long array
    (~0.4 s per 20 million rows, once per N)."""
    if big_n - 2 <= _CHUNK:
        hs_cs = (1.0 / np.arange(big_n - 1, 1, -1)).cumsum()
        return float(hs_cs[-1] + 1), float((hs_cs / np.arange(2, big_n)).sum())
    running, g = 0.0, 0.0
    for start in range(0, big_n - 2, _CHUNK):
        stop = min(start + _CHUNK, big_n - 2)
        terms = 1.0 / np.arange(big_n - 1 - start, big_n - 1 - stop, -1)
        hs_cs = np.concatenate([[running], terms]).cumsum()[1:]  # numpy's cumsum adds left to right
        g += float((hs_cs / np.arange(2 + start, 2 + stop)).sum())
        running = float(hs_cs[-1])
    return running + 1, g


def cramervonmises(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(T, p) of scipy.stats.cramervonmises_2samp(ref, cur) (asymptotic p: more than 20 values a side)."""
    a = [int(x) for x in ref]
    b = [int(x) for x in cur]
    nx, ny = sum(a), sum(b)
    four_u_x = four_u_y = 0  # 4 * sum (r - i)^2 per window, in integers
    below = below_x = below_y = 0
    for ax, by in zip(a, b, strict=True):
        c = ax + by
        d2 = 2 * below + c - 2 * below_x - ax  # 2 * (r - A - (a+1)/2), r = below + (c+1)/2
        e2 = 2 * below + c - 2 * below_y - by
        four_u_x += ax * d2 * d2 + (ax * (ax * ax - 1)) // 3  # a(a^2-1) is a multiple of 3 (three consecutive ints)
        four_u_y += by * e2 * e2 + (by * (by * by - 1)) // 3
        below, below_x, below_y = below + c, below_x + ax, below_y + by
    u = float(nx * four_u_x + ny * four_u_y) / 4.0
    k, big_n = nx * ny, nx + ny
    t = u / (k * big_n) - (4 * k - 1) / (6 * big_n)
    et = (1 + 1 / big_n) / 6
    vt = (big_n + 1) * (4 * k * big_n - 3 * (nx**2 + ny**2) - 2 * k) / (45 * big_n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    p = 1.0 if tn < 0.003 else max(1.0 - _cdf_cvm_inf(tn), 0.0)
    return float(t), float(p)


def _cdf_cvm_inf(x: float) -> float:
    """The limiting CDF of the one-sample Cramer-von Mises statistic (Csorgo and Faraway 1996, eq. 1.2), as scipy
    sums it: terms until one is below 1e-7."""
    xa = np.asarray(x, dtype=np.float64)
    total = np.float64(0.0)
    k = 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (np.pi**1.5 * np.sqrt(xa))
        y = 4 * k + 1
        q = y**2 / (16 * xa)
        z = u * math.sqrt(y) * np.exp(-q) * special.kv(0.25, q)
        total = total + z
        if not abs(z) >= 1e-7:
            return float(total)
        k += 1


def one_machine(method: str, labels: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """The one-machine method on the samples rebuilt from a small table (N <= SMALL_N)."""
    from aisre.monitor.drift.registry import get_method

    tester = get_method(method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tester.fit(np.repeat(labels, ref))
        result = tester.score(np.repeat(labels, cur))
    return result.statistic, float(result.p_value) if result.p_value is not None else math.nan


def rank_test(
    name: str, method: str, ref: NumericPart, cur: NumericPart, grid: tuple[np.ndarray, np.ndarray], details: dict
) -> tuple[float, float]:
    """`anderson` / `cramervonmises` for one numeric column: exact from the merged value tables when both
    windows kept one (<= EXACT_VALUE_LIMIT distinct values each), else over the grid bins `grid` (counts of
    finite values per bin, both windows), values inside one bin treated as tied."""
    if method == "cramervonmises":
        for role, part in (("reference", ref), ("current", cur)):
            if part.profile.n < 2:
                profile = part.profile
                raise DataError(
                    f"column {name!r} (method {method!r}): {role} has only {profile.n} non-missing values "
                    f"({profile.n + profile.infinite + profile.missing} rows, {profile.missing} missing, "
                    f"{profile.infinite} infinite); need at least 2"
                )
    test = anderson if method == "anderson" else cramervonmises
    if ref.values is not None and cur.values is not None:
        labels = np.array(sorted(set(ref.values) | set(cur.values)), dtype=np.float64)
        a = np.array([ref.values.get(v, 0) for v in labels], dtype=np.int64)
        b = np.array([cur.values.get(v, 0) for v in labels], dtype=np.int64)
        details.update(exact_from="value counts", distinct_values=len(labels), error_bound=0.0)
        if len(labels) == 1:
            details.setdefault("notes", []).append("every value in both windows is the same: no evidence of drift")
            return 0.0, 1.0
        if int(a.sum() + b.sum()) <= SMALL_N:
            return one_machine(method, labels, a, b)
        statistic, p = test(a, b)
    else:
        lo, hi = min(ref.profile.min, cur.profile.min), max(ref.profile.max, cur.profile.max)
        if lo == hi:
            details.setdefault("notes", []).append("every value in both windows is the same: no evidence of drift")
            return 0.0, 1.0
        a, b = grid
        kept = (a + b) > 0
        details.update(grid_bins=int(kept.sum()), exact_from="grid bins (values in one bin tied)")
        seen = max(ref.distinct, cur.distinct)
        details.setdefault("notes", []).append(GRID_NOTE.format(limit=ref.limit, distinct=seen))
        statistic, p = test(a[kept], b[kept])
    if method == "anderson" and p in (0.001, 0.25):
        details["p_value_capped"] = "floor" if p == 0.001 else "cap"
    return statistic, p
