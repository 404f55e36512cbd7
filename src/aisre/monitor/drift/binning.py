"""Fixed bins from the reference: quantile edges with open outer bins, counts, shares, zero-share rule."""

from __future__ import annotations

import numpy as np

from aisre.errors import DataError

#: Shares of 0 are replaced by this before a logarithm of a share is taken (PSI). Same floor
#: as Evidently's usual case; shares are not renormalised afterwards.
ZERO_SHARE = 1e-4


def quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges: the reference quantiles at 1/n, ..., (n-1)/n, deduplicated.

    Edges are actual data values (the inverted-CDF quantile), so a discrete column gets
    one bin per value instead of empty bins between values. With the two open outer bins
    there are at most `n_bins` bins and every bin holds some reference mass.
    """
    if len(values) == 0:
        return np.empty(0)
    probs = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(values, probs, method="inverted_cdf"))


def bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts over len(inner_edges)+1 bins: (-inf, e1), [e1, e2), ..., [ek, +inf)."""
    index = np.searchsorted(inner_edges, values, side="right")
    return np.bincount(index, minlength=len(inner_edges) + 1).astype(np.int64)


def shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise DataError("cannot take shares of an empty histogram (all counts are 0)")
    return counts / total


def floor_zero_shares(p: np.ndarray, floor: float = ZERO_SHARE) -> np.ndarray:
    """aisre's zero-share rule: a share of exactly 0 becomes `floor` (no renormalisation)."""
    return np.where(p == 0, floor, p)


def evidently_fill_zeroes(p: np.ndarray) -> np.ndarray:
    """Evidently's rule (get_binned_data, feel_zeroes=True): 0 -> 1e-4, or min nonzero / 1e6 if that
    minimum is <= 1e-4."""
    p = np.array(p, dtype=np.float64)
    smallest = p[p != 0].min()
    np.place(p, p == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return p
