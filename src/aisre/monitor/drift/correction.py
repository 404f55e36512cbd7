"""Multiple-testing corrections of p-values across columns: Bonferroni and Benjamini-Hochberg."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aisre.errors import MethodError

CORRECTIONS = ("bonferroni", "bh")


def adjust(p_values: Sequence[float], correction: str) -> np.ndarray:
    """Adjusted p-values in input order; compare them with the same threshold as raw ones.

    bonferroni: min(1, p * m). bh (Benjamini-Hochberg, controls the false discovery rate):
    sorted ascending, p_(i) * m / i, then the running minimum from the largest down, capped
    at 1 -- the same numbers as scipy.stats.false_discovery_control(p, method="bh").
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    if correction == "bh":
        order = np.argsort(p)
        scaled = p[order] * m / np.arange(1, m + 1)
        scaled = np.minimum.accumulate(scaled[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.clip(scaled, 0, 1)
        return out
    raise MethodError(f"correction: unknown correction {correction!r}; expected one of {CORRECTIONS} or None")
