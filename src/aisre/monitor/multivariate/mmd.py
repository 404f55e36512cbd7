"""Maximum mean discrepancy: unbiased MMD² with a Gaussian kernel and an exact permutation test.

    k(a, b) = exp(-||a - b||² / (2 σ²)),   σ = median pairwise distance of the pooled sample

    MMD²_u = 1/(m(m-1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n-1)) Σ_{i≠j} k(y_i, y_j) - 2/(mn) Σ_{i,j} k(x_i, y_j)

The pooled kernel matrix K is computed once; a permutation only relabels rows, so each
permuted statistic needs q = aᵀKa and r = aᵀ(K1) for the 0/1 membership vector a (one
matrix product for a whole batch of permutations). The bandwidth depends on the pooled
sample only, which a permutation leaves unchanged, so the test stays exact:
p = (k + 1) / (B + 1) with k the number of permuted statistics >= the observed one.
Numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError


def pairwise_sq_distances(z: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between all rows of `z` (n x d) -> n x n, clipped at 0."""
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def median_bandwidth(d2: np.ndarray) -> float:
    """σ = median of the pairwise distances i < j (the median heuristic); 1.0 if they are all 0."""
    upper = d2[np.triu_indices_from(d2, k=1)]
    sigma = float(np.sqrt(np.median(upper))) if upper.size else 0.0
    return sigma if sigma > 0 and math.isfinite(sigma) else 1.0


def rbf_kernel(d2: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-d2 / (2.0 * sigma * sigma))


def mmd2_unbiased(kernel: np.ndarray, m: int) -> float:
    """Unbiased MMD² from a pooled kernel matrix whose first `m` rows are the first sample."""
    n = kernel.shape[0] - m
    if m < 2 or n < 2:
        raise DataError(f"MMD needs at least 2 rows in each sample, got {m} and {n}")
    kxx, kyy, kxy = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    sxx = kxx.sum() - np.trace(kxx)
    syy = kyy.sum() - np.trace(kyy)
    return float(sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * kxy.sum() / (m * n))


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """(k + 1) / (B + 1), k = number of permuted statistics >= observed (never 0: exact, valid)."""
    permuted = np.asarray(permuted, dtype=np.float64)
    k = int(np.count_nonzero(permuted >= observed - 1e-12 * max(1.0, abs(observed))))
    return (k + 1) / (permuted.size + 1)


def critical_value(permuted: np.ndarray, alpha: float) -> float:
    """The statistic value t such that `observed > t` is exactly `p_value < alpha`.

    p < alpha  <=>  k < alpha (B + 1) - 1  <=>  observed > the (k_max + 1)-th largest
    permuted value, k_max = ceil(alpha (B + 1) - 1) - 1. +inf when B is too small for alpha.
    """
    b = permuted.size
    k_max = math.ceil(alpha * (b + 1) - 1) - 1
    if k_max < 0:
        return math.inf
    if k_max >= b:
        return -math.inf
    return float(np.sort(permuted)[::-1][k_max])


def mmd_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_permutations: int = 500,
    seed: int = 0,
    batch: int = 128,
    sigma: float | None = None,
) -> tuple[float, np.ndarray, dict[str, Any]]:
    """Observed unbiased MMD² of samples x (m x d) and y (n x d), and B permuted MMD² values."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DataError(f"MMD: expected two 2-D samples with the same columns, got {x.shape} and {y.shape}")
    if n_permutations < 1:
        raise InvalidParameterError(f"n_permutations: expected >= 1, got {n_permutations}")
    m, n = len(x), len(y)
    pooled = np.vstack([x, y]).astype(np.float64, copy=False)
    d2 = pairwise_sq_distances(pooled)
    bandwidth = median_bandwidth(d2) if sigma is None else float(sigma)
    kernel = rbf_kernel(d2, bandwidth)
    del d2
    observed = mmd2_unbiased(kernel, m)
    total = kernel.sum()
    row_sums = kernel.sum(axis=1)
    rng = np.random.default_rng(seed)
    permuted = np.empty(n_permutations)
    base = np.zeros(m + n)
    base[:m] = 1.0
    trace = np.trace(kernel)
    diag = np.diag(kernel)
    for start in range(0, n_permutations, batch):
        size = min(batch, n_permutations - start)
        a = rng.permuted(np.tile(base, (size, 1)), axis=1)  # rows: membership of sample x
        q = np.einsum("bi,bi->b", a @ kernel, a)  # Σ_{i,j in x} k
        r = a @ row_sums  # Σ_{i in x, j any} k
        dx = a @ diag
        sxx = q - dx
        sxy = r - q
        syy = total - 2.0 * r + q - (trace - dx)
        permuted[start : start + size] = sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)
    rule = "median pairwise distance of the pooled sample" if sigma is None else "given"
    details = {
        "bandwidth": bandwidth,
        "bandwidth_rule": rule,
        "kernel": "rbf",
        "n_reference": m,
        "n_current": n,
        "n_permutations": n_permutations,
    }
    return observed, permuted, details
