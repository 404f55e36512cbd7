"""Both empirical CDFs on the merged sorted sample: the core of the large-sample KS statistic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Merged:
    """`values` is the pooled sample sorted; `cdf_a`/`cdf_b` are both ECDFs after each position.

    At a run of tied values only the last position holds the right-continuous ECDF value,
    which is all the KS statistic needs.
    """

    values: np.ndarray
    cdf_a: np.ndarray
    cdf_b: np.ndarray

    @property
    def last_of_ties(self) -> np.ndarray:
        ends = np.empty(len(self.values), dtype=bool)
        ends[:-1] = self.values[1:] != self.values[:-1]
        ends[-1] = True
        return ends


def merge(sorted_a: np.ndarray, sorted_b: np.ndarray) -> Merged:
    """Merge two sorted samples in O(n): a stable sort of two sorted runs is a single merge."""
    pooled = np.concatenate([sorted_a, sorted_b])
    order = np.argsort(pooled, kind="stable")
    from_b = order >= len(sorted_a)
    count_b = np.cumsum(from_b)
    count_a = np.arange(1, len(pooled) + 1) - count_b
    return Merged(pooled[order], count_a / len(sorted_a), count_b / len(sorted_b))


def ks_statistic(m: Merged) -> float:
    """max |F_a - F_b| over the pooled sample (the two-sided KS D, as scipy.stats.ks_2samp)."""
    ends = m.last_of_ties
    return float(np.max(np.abs(m.cdf_a[ends] - m.cdf_b[ends])))
