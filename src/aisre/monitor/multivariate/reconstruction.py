"""PCA reconstruction error, step by step as NannyML's DataReconstructionDriftCalculator.

Fit on the reference:
  1. impute: numeric columns with the reference mean, text columns with the reference's
     most frequent value (ties: the smallest, as scikit-learn's SimpleImputer);
  2. encode text as the category's share of the (imputed) reference rows
     (category_encoders' CountEncoder(normalize=True)); a category never seen -> 0;
  3. standardise every column with the reference mean and population std (StandardScaler;
     a constant column is only centred);
  4. PCA keeping the fewest components whose cumulative explained-variance ratio exceeds
     `n_components` (0.65), as sklearn's PCA(n_components=0.65) does.
Score a window: apply 1-3, project and reconstruct (z -> (z - μ)VₖᵀVₖ + μ) and average the
Euclidean norm of (row - reconstruction) over the window's rows.
Thresholds: the mean error of each reference chunk, then mean ± 3 std (ddof 0) of those
chunk values (NannyML's StandardDeviationThreshold); a negative lower bound means none.
Numpy only (the PCA is an SVD, equal to scikit-learn's up to the components' signs,
which a reconstruction does not depend on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.profiles.profile import category_counts
from aisre.monitor.tabular.frame import Columns, is_numeric


@dataclass
class ReconstructionModel:
    """What is learnt from the reference: imputation values, encodings, scaling and components."""

    names: list[str]
    fill: dict[str, float | str]
    shares: dict[str, dict[str, float]]
    mean: np.ndarray
    scale: np.ndarray
    pca_mean: np.ndarray
    components: np.ndarray  # k x d
    explained_variance_ratio: np.ndarray

    @classmethod
    def fit(cls, reference: Columns, n_components: float | int = 0.65) -> ReconstructionModel:
        names = list(reference)
        fill: dict[str, float | str] = {}
        shares: dict[str, dict[str, float]] = {}
        for name, values in reference.items():
            if is_numeric(values):
                finite = values[~np.isnan(values)]
                fill[name] = float(finite.mean()) if finite.size else 0.0
            else:
                present = {c: k for c, k in category_counts(values).items() if c is not None}
                # SimpleImputer(most_frequent): the smallest of the most frequent values
                text_fill = min(present.items(), key=lambda kv: (-kv[1], kv[0]))[0] if present else ""
                fill[name] = text_fill
                imputed = category_counts(_impute_text(values, text_fill))
                # imputing left no None (normalised text marks missing as None); the filter only types it
                shares[name] = {c: k / values.size for c, k in imputed.items() if c is not None}
        model = cls(names, fill, shares, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 0)), np.zeros(0))
        encoded = model._encode(reference)
        model.mean = encoded.mean(axis=0)
        std = encoded.std(axis=0)
        model.scale = np.where(std > 0, std, 1.0)
        scaled = (encoded - model.mean) / model.scale
        model.pca_mean, model.components, model.explained_variance_ratio = _pca(scaled, n_components)
        return model

    def _encode(self, data: Columns) -> np.ndarray:
        missing = [c for c in self.names if c not in data]
        if missing:
            raise DataError(f"columns missing from the current data: {missing}")
        out = np.empty((len(data[self.names[0]]), len(self.names)))
        for j, name in enumerate(self.names):
            values = data[name]
            if name in self.shares:
                if is_numeric(values):
                    raise DataError(f"column {name!r}: text in the reference, numbers in the current data")
                share = self.shares[name]
                out[:, j] = [share.get(v, 0.0) for v in _impute_text(values, str(self.fill[name]))]
            else:
                if not is_numeric(values):
                    raise DataError(f"column {name!r}: numeric in the reference, text in the current data")
                out[:, j] = np.where(np.isnan(values), self.fill[name], values)
        return out

    def row_errors(self, data: Columns) -> np.ndarray:
        """Euclidean distance between each standardised row and its PCA reconstruction."""
        z = (self._encode(data) - self.mean) / self.scale
        centred = z - self.pca_mean
        reconstructed = (centred @ self.components.T) @ self.components + self.pca_mean
        return np.linalg.norm(z - reconstructed, axis=1)

    def chunk_errors(self, data: Columns, chunk_size: int) -> np.ndarray:
        """Mean reconstruction error of consecutive chunks of `chunk_size` rows (last partial dropped)."""
        errors = self.row_errors(data)
        count = errors.size // chunk_size
        if count == 0:
            raise DataError(f"chunk_size: {chunk_size} is more than the {errors.size} rows given")
        return errors[: count * chunk_size].reshape(count, chunk_size).mean(axis=1)


def _impute_text(values: np.ndarray, fill: str) -> np.ndarray:
    out = values.copy()
    out[np.equal(values, np.array(None))] = fill  # elementwise `is None` (numpy's stubs take no bare None)
    return out


def _pca(x: np.ndarray, n_components: float | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components k x d, explained variance ratio) as sklearn.decomposition.PCA."""
    n, d = x.shape
    if n < 2:
        raise DataError(f"the reference needs at least 2 rows for PCA, got {n}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    variance = s**2 / (n - 1)
    total = variance.sum()
    ratio = variance / total if total > 0 else np.zeros_like(variance)
    if isinstance(n_components, float) and 0 < n_components < 1:
        # sklearn: the first k whose cumulative ratio is strictly greater than n_components
        k = int(np.searchsorted(np.cumsum(ratio), n_components, side="right")) + 1
        k = min(k, len(ratio))
    elif isinstance(n_components, int) and 1 <= n_components <= min(n, d):
        k = n_components
    elif isinstance(n_components, int) and not isinstance(n_components, bool) and n_components > min(n, d):
        raise DataError(f"n_components: {n_components} is more than the data allows (1..{min(n, d)} for {n} x {d})")
    else:
        raise InvalidParameterError(
            f"n_components: expected a fraction in (0, 1) or an integer >= 1, got {n_components!r}"
        )
    return mean, vt[:k], ratio[:k]


def reconstruction_test(
    reference: Columns,
    current: Columns,
    *,
    n_components: float | int = 0.65,
    chunk_size: int | None = None,
    std_multiplier: float = 3.0,
) -> tuple[float, float, float | None, dict[str, Any]]:
    """(current mean error, upper threshold, lower threshold or None, details)."""
    model = ReconstructionModel.fit(reference, n_components)
    current_errors = model.row_errors(current)
    n_ref = len(reference[model.names[0]])
    notes = []
    size = len(current_errors) if chunk_size is None else int(chunk_size)
    if size < 1:
        raise InvalidParameterError(f"chunk_size: expected >= 1, got {chunk_size}")
    if n_ref // size < 2:
        size = max(1, n_ref // 10)  # NannyML's DefaultChunker: 10 chunks
        notes.append(
            f"the reference holds fewer than 2 chunks of the window's size; thresholds use "
            f"10 reference chunks of {size} rows (wider band: fewer alerts)"
        )
    chunks = model.chunk_errors(reference, size)
    centre, spread = float(chunks.mean()), float(chunks.std())
    upper = centre + std_multiplier * spread
    lower: float | None = centre - std_multiplier * spread
    if lower is not None and lower < 0:
        lower = None  # NannyML: below the lower limit 0 -> no lower threshold
    statistic = float(current_errors.mean())
    details = {
        "n_components": int(model.components.shape[0]),
        "explained_variance_ratio": float(model.explained_variance_ratio.sum()),
        "reference_chunk_size": size,
        "reference_chunks": int(chunks.size),
        "reference_chunk_mean": centre,
        "reference_chunk_std": spread,
        "lower_threshold": lower,
        "upper_threshold": upper,
        "sampling_error": float(current_errors.std(ddof=1) / math.sqrt(current_errors.size))
        if current_errors.size > 1
        else math.nan,
        "n_reference": n_ref,
        "n_current": int(current_errors.size),
        "notes": notes,
    }
    return statistic, upper, lower, details
