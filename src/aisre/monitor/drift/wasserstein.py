"""Normalised Wasserstein distance: W1(reference, current) / max(std(reference), 0.001)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aisre.monitor.drift.bucketed import wasserstein_distance
from aisre.monitor.drift.stattests import _SampleMethod
from aisre.monitor.drift.values import summary


class Wasserstein(_SampleMethod):
    """Earth mover's distance in units of the reference's standard deviation (Evidently's `wasserstein`).

    W1 equals scipy.stats.wasserstein_distance(reference, current) (the integral of |F_ref - F_cur|),
    computed without sorting either sample (aisre.monitor.drift.bucketed: counts and sums per
    bucket, finer buckets where the two CDFs may cross). The divisor is the population std
    (ddof=0) of the reference, floored at 0.001 so a constant reference does not divide by zero.
    0.1 means "moved a tenth of a standard deviation".
    """

    name = "wasserstein"
    kinds = frozenset({"numeric"})
    uses_p_value = False
    default_threshold = 0.1
    #: A distance: a data-derived lower threshold below 0 is clipped to 0 (thresholds.clip).
    value_range = (0.0, None)
    #: Floor of the divisor, as Evidently (wasserstein_distance_norm.py).
    MIN_SCALE = 0.001

    def _fit(self, reference: np.ndarray) -> None:
        super()._fit(reference)
        self._std = float(np.std(self._ref.values))
        self._scale = max(self._std, self.MIN_SCALE)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current)
        distance = wasserstein_distance(self._ref.values, cur.values)
        details = summary(self._ref, cur)
        details["wasserstein"] = distance
        details["reference_std"] = self._std
        return distance / self._scale, None, details
