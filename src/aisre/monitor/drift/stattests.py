"""Drift tests that give a p-value: Kolmogorov-Smirnov, chi-square, two-proportion Z, Cramer-von Mises,
Anderson-Darling."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from aisre.monitor.drift.base import Method
from aisre.monitor.drift.ecdf import ks_statistic, merge
from aisre.monitor.drift.values import (
    Values,
    align,
    category_counts,
    current_values,
    prepare,
    require_values,
    summary,
)
from aisre.monitor.tabular.frame import DataError

#: scipy.stats.ks_2samp(method="auto") computes the exact p-value up to this sample size.
KS_EXACT_MAX_N = 10_000


class _SampleMethod(Method):
    """Fits by keeping the reference values (dropping missing ones); `compat` only changes verdicts."""

    compat_modes: tuple[str | None, ...] = (None, "evidently")
    #: Evidently decides drift for these tests with `p <= threshold` instead of `<`.
    evidently_inclusive = False

    def __init__(self, threshold: float | None = None, compat: str | None = None) -> None:
        super().__init__(threshold)
        self.compat = compat

    def _fit(self, reference: np.ndarray) -> None:
        self._ref = prepare(reference, "reference")
        if self._ref.kind not in self.kinds:
            raise DataError(
                f"method {self.name!r} needs {' or '.join(sorted(self.kinds))} values, got {self._ref.kind} ones"
            )
        require_values(self._ref, "reference")

    def _current(self, current: np.ndarray, minimum: int = 1) -> Values:
        return current_values(self._ref, current, minimum)

    def is_drift(self, statistic: float, p_value: float | None) -> bool:
        if self.compat == "evidently" and self.evidently_inclusive and p_value is not None:
            return bool(p_value <= self.threshold)
        return super().is_drift(statistic, p_value)


class KS(_SampleMethod):
    """Two-sample two-sided Kolmogorov-Smirnov test; numbers equal scipy.stats.ks_2samp(method="auto").

    Above 10,000 values per side scipy uses the asymptotic p-value kstwo.sf(D, round(n*m/(n+m)));
    there aisre computes D on the merged sorted sample (the reference is sorted once, at fit).
    """

    name = "ks"
    kinds = frozenset({"numeric"})
    uses_p_value = True
    default_threshold = 0.05
    evidently_inclusive = True

    def _fit(self, reference: np.ndarray) -> None:
        super()._fit(reference)
        self._sorted = np.sort(self._ref.values)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current)
        n1, n2 = self._ref.n, cur.n
        if max(n1, n2) <= KS_EXACT_MAX_N:
            result = stats.ks_2samp(self._sorted, cur.values)
            return float(result.statistic), float(result.pvalue), summary(self._ref, cur)
        d = ks_statistic(merge(self._sorted, np.sort(cur.values)))
        m, n = sorted([float(n1), float(n2)], reverse=True)
        p = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
        return d, p, summary(self._ref, cur)


class CramerVonMises(_SampleMethod):
    """Two-sample Cramer-von Mises test: scipy.stats.cramervonmises_2samp (method="auto").

    Made for continuous data: with many ties its asymptotic p-value is far too small
    (scipy reports p ~ 1e-10 for two identical constant samples; aisre returns p = 1 there).
    """

    name = "cramervonmises"
    kinds = frozenset({"numeric"})
    uses_p_value = True
    default_threshold = 0.05
    evidently_inclusive = True

    def _fit(self, reference: np.ndarray) -> None:
        super()._fit(reference)
        require_values(self._ref, "reference", minimum=2)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current, minimum=2)
        details = summary(self._ref, cur)
        if _single_value(self._ref.values, cur.values):
            # scipy's midrank statistic is not 0 when every value ties (it reports strong drift)
            details["notes"] = ["every value in both windows is the same: no evidence of drift"]
            return 0.0, 1.0, details
        result = stats.cramervonmises_2samp(self._ref.values, cur.values)
        return float(result.statistic), float(result.pvalue), details


class AndersonDarling(_SampleMethod):
    """k-sample Anderson-Darling test (k=2, midrank): scipy.stats.anderson_ksamp.

    scipy interpolates the p-value from a table and caps it to [0.001, 0.25]; a capped
    p-value is flagged in details["p_value_capped"] ("floor" or "cap").
    """

    name = "anderson"
    kinds = frozenset({"numeric"})
    uses_p_value = True
    default_threshold = 0.05

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current)
        details = summary(self._ref, cur)
        if _single_value(self._ref.values, cur.values):
            details["notes"] = ["every value in both windows is the same: no evidence of drift"]
            return 0.0, 1.0, details
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = stats.anderson_ksamp([self._ref.values, cur.values])
        p = float(result.pvalue)
        if p in (0.001, 0.25):
            details["p_value_capped"] = "floor" if p == 0.001 else "cap"
        return float(result.statistic), p, details


class ChiSquare(_SampleMethod):
    """Chi-square goodness of fit of current counts to reference shares (Evidently's `chisquare`).

    Over the union of categories: expected_i = reference_count_i * n_current / n_reference,
    statistic = sum (observed_i - expected_i)^2 / expected_i, p = chi2.sf(statistic, k - 1)
    (scipy.stats.chisquare(observed, expected)). A category never seen in the reference has
    expected 0: the statistic is +inf and p = 0 (drift), listed in details["unseen"].
    Numeric columns are compared value by value (meant for few distinct values).

    compat="nannyml" is a different test, NannyML's `chi2`: scipy.stats.chi2_contingency on
    the 2 x k table of reference and current counts (homogeneity; Yates' correction when k = 2).
    """

    name = "chisquare"
    kinds = frozenset({"numeric", "categorical"})
    uses_p_value = True
    default_threshold = 0.05
    compat_modes = (None, "evidently", "nannyml")

    def _fit(self, reference: np.ndarray) -> None:
        super()._fit(reference)
        self._labels, self._counts = category_counts(self._ref)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current)
        labels, ref_counts, cur_counts = align(self._labels, self._counts, *category_counts(cur))
        details = summary(self._ref, cur)
        details["categories"] = len(labels)
        if self.compat == "nannyml":
            if len(labels) < 2:
                return 0.0, 1.0, details
            result = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
            return float(result.statistic), float(result.pvalue), details
        expected = ref_counts * (cur.n / self._ref.n)
        unseen = expected == 0
        if unseen.any():
            details["unseen"] = [labels[i] for i in np.flatnonzero(unseen)[:20]]
            return math.inf, 0.0, details
        if len(labels) < 2:
            details["notes"] = ["a single category in both windows: nothing to compare, no drift"]
            return 0.0, 1.0, details
        statistic = float(np.sum((cur_counts - expected) ** 2 / expected))
        return statistic, float(stats.chi2.sf(statistic, len(labels) - 1)), details


class ZTest(_SampleMethod):
    """Two-proportion Z-test on a binary column (Evidently's `z`).

    The first category in sorted order is "0", every other one "1" (with more than two
    categories that lumps the rest together; noted in details). p1, p2 are the shares of
    "1"; P = (p1*n1 + p2*n2) / (n1 + n2); z = (p1 - p2) / sqrt(P (1 - P) (1/n1 + 1/n2));
    p = 2 * norm.sf(|z|). Evidently writes 2 * (1 - norm.cdf(|z|)), which equals this but
    rounds to 0 below ~1e-16; compat="evidently" uses that form. If both windows hold one
    and the same category, p = 1.
    """

    name = "z"
    kinds = frozenset({"numeric", "categorical"})
    uses_p_value = True
    default_threshold = 0.05

    def _fit(self, reference: np.ndarray) -> None:
        super()._fit(reference)
        self._labels, self._counts = category_counts(self._ref)

    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]:
        cur = self._current(current)
        labels, ref_counts, cur_counts = align(self._labels, self._counts, *category_counts(cur))
        details = summary(self._ref, cur)
        if len(labels) > 2:
            details["notes"] = [f"{len(labels)} categories: the first in sorted order vs all the others"]
        if len(labels) == 1:
            return 0.0, 1.0, details
        first = labels.index(sorted(labels)[0])
        n1, n2 = self._ref.n, cur.n
        p1 = float(n1 - ref_counts[first]) / n1
        p2 = float(n2 - cur_counts[first]) / n2
        pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        if self.compat == "evidently":
            p = 2 * (1 - stats.norm.cdf(np.abs(z)))
        else:
            p = 2 * stats.norm.sf(np.abs(z))
        return float(z), float(p), details


def _single_value(a: np.ndarray, b: np.ndarray) -> bool:
    first = a[0]
    return bool(np.all(a == first) and np.all(b == first))
