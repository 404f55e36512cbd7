"""Probability calibration for CBPE: isotonic regression, applied only when it helps.

The decision follows NannyML's `needs_calibration`: no calibration when the reference has a
single class or near-perfect ranking (AUC > 0.999); otherwise 10 stratified 90/10 splits
(random_state 42), isotonic regression fit on each 90 %, and the expected calibration error
(ECE, 10 equal-count bins over the pooled 10 % test parts) compared before and after.
Calibrate when ECE after < ECE before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError, require


def _sklearn(name: str) -> Any:
    # scikit-learn is an optional extra: importing CBPE works without it, using it names the extra
    return require(f"sklearn.{name}", "sklearn", "CBPE calibration", package="scikit-learn")


def isotonic(y_score: np.ndarray, y_true: np.ndarray) -> Any:
    """Monotone map score -> P(y = 1), clipped outside the reference's score range."""
    return (
        _sklearn("isotonic")
        .IsotonicRegression(out_of_bounds="clip", increasing=True, y_min=0.0, y_max=1.0)
        .fit(y_score, y_true.astype(np.float64))
    )


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10) -> float:
    """ECE over equal-count bins of the sorted scores: sum_b (n_b/n) |mean(p_b) - mean(y_b)|.

    Bins are cut by position (as NannyML: width n // n_bins, the last bin takes the rest);
    the sort is stable so tied scores keep their order and the result is deterministic.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise InvalidParameterError(f"n_bins: expected an integer >= 2, got {n_bins!r}")
    n = len(y_score)
    if n <= 2 * n_bins:
        n_bins = n // 2
        if n_bins < 2:
            raise DataError(f"y_score: the expected calibration error needs at least 4 rows, got {n}")
    order = np.argsort(y_score, kind="stable")
    p, y = y_score[order], y_true[order].astype(np.float64)
    edges = np.arange(0, n + 1, n // n_bins)
    edges[-1] = n
    sums_p = np.add.reduceat(p, edges[:-1])
    sums_y = np.add.reduceat(y, edges[:-1])
    return float(np.sum(np.abs(sums_p - sums_y)) / n)  # (n_b/n)|Σp/n_b - Σy/n_b| = |Σp - Σy|/n


def needs_calibration(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10, n_splits: int = 10) -> bool:
    """True when isotonic calibration lowers the held-out ECE (NannyML's rule)."""
    if np.unique(y_true).size < 2:
        return False
    if _sklearn("metrics").roc_auc_score(y_true, y_score) > 0.999:
        return False
    splitter = _sklearn("model_selection").StratifiedShuffleSplit(n_splits=n_splits, test_size=0.1, random_state=42)
    truth, before, after = [], [], []
    for train, test in splitter.split(y_score, y_true):
        model = isotonic(y_score[train], y_true[train])
        truth.append(y_true[test])
        before.append(y_score[test])
        after.append(model.predict(y_score[test]))
    t = np.concatenate(truth)
    return expected_calibration_error(t, np.concatenate(before), n_bins) > expected_calibration_error(
        t, np.concatenate(after), n_bins
    )
