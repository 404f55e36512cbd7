"""The importances of one window (`FeatureImportance`): values per feature, their shares and ranking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.monitor.tabular.frame import DataError


@dataclass(frozen=True, slots=True)
class FeatureImportance:
    """Importance of each feature over one window.

    `values` are mean importances: decrease of the score (score units) for `permutation`,
    the model's own numbers for `feature_importances_`, mean |coefficient| for `coef_`.
    `raw` is features x repeats for permutation importance, else None.
    """

    features: tuple[str, ...]
    values: np.ndarray
    method: str
    std: np.ndarray | None = None
    raw: np.ndarray | None = None
    baseline_score: float | None = None
    n_rows: int | None = None

    def as_dict(self) -> dict[str, float]:
        return {f: float(v) for f, v in zip(self.features, self.values, strict=True)}

    def shares(self) -> dict[str, float]:
        """Each feature's share of the total importance, in [0, 1].

        Negative permutation importances (shuffling helped: noise) count as 0. If nothing
        is important every share is 0.
        """
        clipped = np.clip(np.nan_to_num(self.values, nan=0.0), 0.0, None)
        total = float(clipped.sum())
        shares = clipped / total if total > 0 else np.zeros_like(clipped)
        return {f: float(s) for f, s in zip(self.features, shares, strict=True)}

    def ranked(self) -> list[tuple[str, float]]:
        """(feature, importance), most important first."""
        return sorted(self.as_dict().items(), key=lambda kv: -kv[1])

    def to_dict(self) -> dict[str, Any]:
        std = None if self.std is None else dict(zip(self.features, self.std.tolist(), strict=True))
        return {
            "method": self.method,
            "n_rows": self.n_rows,
            "baseline_score": self.baseline_score,
            "importances": self.as_dict(),
            "shares": self.shares(),
            "std": std,
        }


def as_feature_importance(value: FeatureImportance | Mapping[str, float], name: str) -> FeatureImportance:
    """`value` itself, or a plain mapping of feature -> importance read as one (method "given")."""
    if isinstance(value, FeatureImportance):
        return value
    if isinstance(value, Mapping) and value:
        values = np.array([float(v) for v in value.values()])
        return FeatureImportance(tuple(str(k) for k in value), values, "given")
    raise DataError(f"{name}: expected a FeatureImportance or a non-empty mapping of feature -> importance")
