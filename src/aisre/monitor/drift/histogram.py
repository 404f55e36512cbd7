"""Distances between binned distributions: PSI, Jensen-Shannon, Hellinger (each also from raw counts)."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np
from scipy.spatial import distance

from aisre.errors import InvalidParameterError, MethodError
from aisre.monitor.drift import compat as peers
from aisre.monitor.drift.base import Method
from aisre.monitor.drift.binning import bin_counts, floor_zero_shares, quantile_edges, shares
from aisre.monitor.drift.values import (
    Values,
    align,
    category_counts,
    current_values,
    prepare,
    require_values,
    summary,
)

#: Bins for numeric columns in aisre's own mode (reference deciles, the usual PSI setup).
DEFAULT_BINS = 10


class HistogramMethod(Method):
    """A distance between the shares of reference and current over the same bins.

    aisre's binning (compat=None): numeric columns get inner edges at the reference's
    quantiles 1/n_bins ... (n_bins-1)/n_bins (actual data values, deduplicated) and two open
    outer bins, all fixed at `fit`; categorical columns get one bin per category over the
    union of both windows (a category unseen in the reference has reference share 0).
    Subclasses define `from_counts(ref_counts, cur_counts)`, usable on any two count vectors
    over the same fixed bins (e.g. mergeable profiles).
    """

    kinds = frozenset({"numeric", "categorical"})
    uses_p_value = False
    default_threshold = 0.1
    #: Distances are >= 0: a data-derived lower threshold below 0 is clipped to 0 (thresholds.clip).
    value_range: tuple[float | None, float | None] = (0.0, None)
    compat_modes: tuple[str | None, ...] = (None, "evidently", "nannyml")

    def __init__(self, threshold: float | None = None, n_bins: int = DEFAULT_BINS, compat: str | None = None):
        super().__init__(threshold)
        if n_bins < 2:
            raise InvalidParameterError(f"n_bins: expected an integer >= 2, got {n_bins!r}")
        self.n_bins = int(n_bins)
        self.compat = compat

    @staticmethod
    @abstractmethod
    def from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        """The statistic from two count vectors over the same bins (aisre's rules)."""

    def _fit(self, reference: np.ndarray) -> None:
        self._ref = prepare(reference, "reference")
        require_values(self._ref, "reference")
        if self.compat is not None:
            return  # the peers bin at score time (Evidently pools both windows)
        if self._ref.kind == "numeric":
            self._edges = quantile_edges(self._ref.values, self.n_bins)
            self._ref_counts = bin_counts(self._ref.values, self._edges)
        else:
            self._labels, self._ref_counts = category_counts(self._ref)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = current_values(self._ref, current)
        details = summary(self._ref, cur)
        if self.compat == "evidently":
            statistic = self._evidently(self._ref, cur)
        elif self.compat == "nannyml":
            statistic = self._nannyml(*peers.nannyml_shares(self._ref, cur))
        elif self._ref.kind == "numeric":
            cur_counts = bin_counts(cur.values, self._edges)
            statistic = self.from_counts(self._ref_counts, cur_counts)
            details["bin_edges"] = self._edges.tolist()
        else:
            labels, ref_counts, cur_counts = align(self._labels, self._ref_counts, *category_counts(cur))
            statistic = self.from_counts(ref_counts, cur_counts)
            details["categories"] = len(labels)
            if len(labels) > len(self._labels):
                details["unseen"] = labels[len(self._labels) : len(self._labels) + 20]
        return statistic, None, details

    def is_drift(self, statistic: float, p_value: float | None) -> bool:
        if self.compat == "nannyml":  # NannyML alerts when value > upper threshold
            return bool(statistic > self.threshold)
        return super().is_drift(statistic, p_value)

    def _evidently(self, ref: Values, cur: Values) -> float:
        raise MethodError(f"compat: method {self.name!r} has no compat='evidently' mode")

    def _nannyml(self, ref_p: np.ndarray, cur_p: np.ndarray) -> float:
        raise MethodError(f"compat: method {self.name!r} has no compat='nannyml' mode")


class PSI(HistogramMethod):
    """Population Stability Index: sum (q_i - p_i) * ln(q_i / p_i), p = reference shares, q = current.

    Zero shares (either side) become 1e-4 first (binning.ZERO_SHARE), else one empty bin
    would make PSI infinite. Natural log; 0.1 is the usual "some shift" line (0.25 "major").
    """

    name = "psi"
    compat_modes = (None, "evidently")

    @staticmethod
    def from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        p = floor_zero_shares(shares(ref_counts))
        q = floor_zero_shares(shares(cur_counts))
        return float(np.sum((q - p) * np.log(q / p)))

    def _evidently(self, ref: Values, cur: Values) -> float:
        numerical = peers.evidently_is_numerical(ref, cur)
        p, q = peers.evidently_binned_shares(ref, cur, numerical, fill_zeroes=True)
        return float(np.sum((p - q) * np.log(p / q)))


class JensenShannon(HistogramMethod):
    """Jensen-Shannon *distance* (the square root of the divergence), natural log, in [0, sqrt(ln 2)].

    scipy.spatial.distance.jensenshannon(p, q) (base e, scipy's and Evidently's default), so
    the 0.1 threshold means what it means in Evidently and auto verdicts match theirs. Zero
    shares need no floor (0 ln 0 = 0). compat="nannyml" uses base 2 (values 1/sqrt(ln 2) ~
    1.20 times larger), as NannyML does.
    """

    name = "jensenshannon"

    @staticmethod
    def from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        return float(distance.jensenshannon(shares(ref_counts), shares(cur_counts)))

    def _evidently(self, ref: Values, cur: Values) -> float:
        numerical = peers.evidently_is_numerical(ref, cur)
        p, q = peers.evidently_binned_shares(ref, cur, numerical, fill_zeroes=False)
        return float(distance.jensenshannon(p, q))

    def _nannyml(self, ref_p: np.ndarray, cur_p: np.ndarray) -> float:
        return float(distance.jensenshannon(ref_p, cur_p, base=2))


class Hellinger(HistogramMethod):
    """Hellinger distance sqrt(0.5 * sum (sqrt p_i - sqrt q_i)^2) = sqrt(1 - sum sqrt(p_i q_i)), in [0, 1].

    The first form is used (no cancellation for small distances).
    """

    name = "hellinger"

    @staticmethod
    def from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        p, q = shares(ref_counts), shares(cur_counts)
        return math.sqrt(0.5 * float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))

    def _evidently(self, ref: Values, cur: Values) -> float:
        return peers.evidently_hellinger(ref, cur, peers.evidently_is_numerical(ref, cur))

    def _nannyml(self, ref_p: np.ndarray, cur_p: np.ndarray) -> float:
        return float(np.sqrt(np.sum((np.sqrt(ref_p) - np.sqrt(cur_p)) ** 2)) / np.sqrt(2))


class LInfinity(HistogramMethod):
    """L-infinity distance max_i |p_i - q_i| of category shares over the union of categories, in [0, 1].

    NannyML's `l_infinity` (nannyml/drift/univariate/methods.py `LInfinityDistance`: reference
    value_counts(normalize=True) minus the current's, fill 0, abs().max()); compat="nannyml" is
    the same formula. The largest change in any one category's share, so it does not grow with
    the number of categories. Numeric columns: each distinct value is a category (meant for
    low-cardinality columns such as class labels).
    """

    name = "linfinity"
    compat_modes = (None, "nannyml")

    @staticmethod
    def from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
        return float(np.max(np.abs(shares(ref_counts) - shares(cur_counts))))

    def _fit(self, reference: np.ndarray) -> None:
        self._ref = prepare(reference, "reference")
        require_values(self._ref, "reference")
        self._labels, self._ref_counts = category_counts(self._ref)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = current_values(self._ref, current)
        labels, ref_counts, cur_counts = align(self._labels, self._ref_counts, *category_counts(cur))
        details = summary(self._ref, cur)
        details["categories"] = len(labels)
        return self.from_counts(ref_counts, cur_counts), None, details
