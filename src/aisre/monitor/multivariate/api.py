"""Multivariate drift of a whole table: domain classifier AUC, PCA reconstruction error, MMD.

    result = multivariate_drift(reference_df, current_df, method="mmd")
    result.drift, result.p_value, result.details
    result.signals("fraud", "v3", window_start, window_end)

Each method sees the joint distribution, so it catches what univariate tests cannot: two
features whose marginals stay the same while their relation changes. Inputs are anything
`aisre.monitor.tabular.frame.to_columns` accepts; the current table must hold the reference's
columns with the same kinds (numeric / text). The formulas live in `mmd.py`,
`domain_classifier.py` and `reconstruction.py`; docs/statistics-multivariate-online.md
states them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.multivariate.domain_classifier import domain_classifier_test
from aisre.monitor.multivariate.mmd import critical_value, mmd_test, permutation_p_value
from aisre.monitor.multivariate.reconstruction import reconstruction_test
from aisre.monitor.profiles.profile import category_counts
from aisre.monitor.tabular.frame import Columns, check_alpha, is_numeric, to_columns
from aisre.records import Signal

SIGNAL_NAMES = {"domain_classifier": "multivariate_drift_auc", "pca": "reconstruction_error", "mmd": "mmd"}


@dataclass(frozen=True, slots=True)
class MultivariateDriftResult:
    """One multivariate test of a current window against the reference.

    `threshold` is on the statistic's scale: the permutation critical value for the
    domain classifier and MMD (`statistic > threshold` exactly when `p_value < alpha`), the
    upper reference band for PCA (whose lower band, if any, is in `details`).
    """

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drift: bool
    details: dict[str, Any] = field(default_factory=dict)

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """One signal: `multivariate_drift_auc`, `reconstruction_error` or `mmd`."""
        threshold = self.threshold if math.isfinite(self.threshold) else None
        return [
            Signal(
                model,
                version,
                SIGNAL_NAMES[self.method],
                self.statistic,
                threshold,
                self.drift,
                {"method": self.method},
                window_start,
                window_end,
            )
        ]


def align(reference: Any, current: Any, columns: Sequence[str] | None = None) -> tuple[Columns, Columns]:
    """Both tables as columns, with the reference's column set and kinds; rows in both."""
    ref = to_columns(reference, columns)
    if not ref:
        raise DataError("reference: no columns")
    try:
        cur = to_columns(current, list(ref))
    except DataError as exc:
        raise DataError(f"current: {exc}") from None
    for name, values in ref.items():
        if is_numeric(values) != is_numeric(cur[name]):
            kinds = ("numeric", "text") if is_numeric(values) else ("text", "numeric")
            raise DataError(f"column {name!r}: {kinds[0]} in the reference, {kinds[1]} in the current data")
    for label, table in (("reference", ref), ("current", cur)):
        if len(next(iter(table.values()))) == 0:
            raise DataError(f"{label}: no rows")
    return ref, cur


def numeric_matrix(reference: Columns, current: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Rows as vectors for a kernel: numeric columns standardised with the reference's mean
    and std (missing -> 0, the reference mean, plus a 0/1 missing column when any is
    missing); text one-hot over the reference's categories plus one "unseen" column."""
    m = len(next(iter(reference.values())))
    ref_blocks, cur_blocks = [], []
    for name, ref in reference.items():
        cur = current[name]
        if is_numeric(ref):
            finite = ref[np.isfinite(ref)]
            mean = float(finite.mean()) if finite.size else 0.0
            std = float(finite.std()) if finite.size else 0.0
            pooled = (np.concatenate([ref, cur]) - mean) / (std if std > 0 else 1.0)
            missing = ~np.isfinite(pooled)
            pooled[missing] = 0.0
            block = np.column_stack([pooled, missing]) if missing.any() else pooled[:, None]
        else:
            categories = [c for c in category_counts(ref) if c is not None]
            index = {c: i for i, c in enumerate(sorted(categories))}
            pooled_text = np.concatenate([ref, cur])
            block = np.zeros((pooled_text.size, len(index) + 2))  # + unseen + missing
            codes = [len(index) + 1 if v is None else index.get(v, len(index)) for v in pooled_text]
            block[np.arange(pooled_text.size), codes] = 1.0
            block = block[:, block.any(axis=0)]
        ref_blocks.append(block[:m])
        cur_blocks.append(block[m:])
    return np.hstack(ref_blocks), np.hstack(cur_blocks)


def _subsample(x: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or len(x) <= limit:
        return x
    return x[np.sort(rng.choice(len(x), size=limit, replace=False))]


def mmd_drift_matrices(
    x: np.ndarray,
    y: np.ndarray,
    *,
    alpha: float = 0.05,
    n_permutations: int = 500,
    max_samples: int | None = 1000,
    seed: int = 0,
    sigma: float | None = None,
) -> MultivariateDriftResult:
    """MMD on two numeric matrices (rows = observations), e.g. embeddings; each sample is
    subsampled (seeded) to at most `max_samples` rows."""
    check_alpha(alpha)
    rng = np.random.default_rng(seed)
    x = _subsample(np.asarray(x, dtype=np.float64), max_samples, rng)
    y = _subsample(np.asarray(y, dtype=np.float64), max_samples, rng)
    observed, permuted, details = mmd_test(x, y, n_permutations=n_permutations, seed=seed + 1, sigma=sigma)
    p = permutation_p_value(observed, permuted)
    details.update(alpha=alpha, max_samples=max_samples)
    return MultivariateDriftResult("mmd", observed, p, critical_value(permuted, alpha), p < alpha, details)


def mmd_drift(
    reference: Any, current: Any, *, columns: Sequence[str] | None = None, **options: Any
) -> MultivariateDriftResult:
    ref, cur = align(reference, current, columns)
    x, y = numeric_matrix(ref, cur)
    return mmd_drift_matrices(x, y, **options)


def domain_classifier_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    max_samples: int | None = 5000,
    seed: int = 0,
    **options: Any,
) -> MultivariateDriftResult:
    """Options: classifier ("hgb" | "logistic"), folds (5), n_permutations (200), permutation
    ("scores" | "refit"), params (for the scikit-learn estimator), importances (True)."""
    check_alpha(alpha)
    ref, cur = align(reference, current, columns)
    rng = np.random.default_rng(seed)
    ref, cur = _subsample_columns(ref, max_samples, rng), _subsample_columns(cur, max_samples, rng)
    observed, permuted, details = domain_classifier_test(ref, cur, seed=seed, **options)
    p = permutation_p_value(observed, permuted)
    details.update(alpha=alpha, max_samples=max_samples)
    threshold = critical_value(permuted, alpha)
    return MultivariateDriftResult("domain_classifier", observed, p, threshold, p < alpha, details)


def reconstruction_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    n_components: float | int = 0.65,
    chunk_size: int | None = None,
    std_multiplier: float = 3.0,
) -> MultivariateDriftResult:
    ref, cur = align(reference, current, columns)
    statistic, upper, lower, details = reconstruction_test(
        ref, cur, n_components=n_components, chunk_size=chunk_size, std_multiplier=std_multiplier
    )
    drift = statistic >= upper or (lower is not None and statistic <= lower)
    return MultivariateDriftResult("pca", statistic, None, upper, drift, details)


METHODS = {"domain_classifier": domain_classifier_drift, "pca": reconstruction_drift, "mmd": mmd_drift}


def multivariate_drift(
    reference: Any, current: Any, method: str = "domain_classifier", **options: Any
) -> MultivariateDriftResult:
    """Test the whole table at once; `method` is "domain_classifier", "pca" or "mmd"."""
    if method not in METHODS:
        raise InvalidParameterError(f"method: expected one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method](reference, current, **options)


def _subsample_columns(columns: Columns, limit: int | None, rng: np.random.Generator) -> Columns:
    n = len(next(iter(columns.values())))
    if limit is None or n <= limit:
        return columns
    pick = np.sort(rng.choice(n, size=limit, replace=False))
    return {name: values[pick] for name, values in columns.items()}
