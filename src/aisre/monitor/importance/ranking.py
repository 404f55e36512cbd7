"""Compare two importance rankings: Spearman's rho, Kendall's tau-b and the share-jump rule, as signals.

Definitions and the reasons for the default thresholds: docs/statistics-importance-llm.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.importance.values import FeatureImportance, as_feature_importance
from aisre.records import Signal
from aisre.records.signal import SignalScope

MIN_SPEARMAN = 0.8
"""Alert below this Spearman rho; a top feature falling to mid-table gets there, a swap of
neighbours does not (10 features, one adjacent swap: rho = 0.988)."""
MIN_KENDALL = 0.6
"""Kendall's tau matching rho = 0.8 for a bivariate normal: tau = 2/pi asin(2 sin(pi rho/6))."""
MAX_SHARE_CHANGE = 0.10
"""Alert when a feature's share of total importance moves by more than 10 points (absolute)."""


# -- rank correlations ------------------------------------------------------------------------
def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of average ranks (scipy.stats.spearmanr); NaN if a
    side is constant or has fewer than 2 values."""
    x, y = _pair(a, b)
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


def kendall_tau(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (ties corrected, as scipy.stats.kendalltau); NaN if a side is constant.

    tau_b = (concordant - discordant) / sqrt(pairs untied in a * pairs untied in b), over all
    pairs; O(n^2) in features, computed a block of rows at a time.
    """
    x, y = _pair(a, b)
    s = untied_x = untied_y = 0.0
    for start in range(0, len(x), 512):
        dx = np.sign(x[start : start + 512, None] - x[None, :])
        dy = np.sign(y[start : start + 512, None] - y[None, :])
        s += float((dx * dy).sum())
        untied_x += float(np.abs(dx).sum())
        untied_y += float(np.abs(dy).sum())
    # every unordered pair was counted twice, in both orders; the ratio is unaffected
    denominator = math.sqrt(untied_x * untied_y)
    return s / denominator if denominator > 0 else math.nan


# -- ranking shifts ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportanceShift:
    """How the importance ranking moved from a reference window to a current one."""

    spearman: float
    kendall: float
    reference_shares: dict[str, float]
    current_shares: dict[str, float]
    min_spearman: float = MIN_SPEARMAN
    min_kendall: float = MIN_KENDALL
    max_share_change: float = MAX_SHARE_CHANGE

    @property
    def share_changes(self) -> dict[str, float]:
        """Current minus reference share, per feature (absolute points in [-1, 1])."""
        return {f: self.current_shares[f] - s for f, s in self.reference_shares.items()}

    @property
    def jumped(self) -> list[str]:
        """Features whose share moved by more than `max_share_change`, biggest move first."""
        moved = [(f, abs(c)) for f, c in self.share_changes.items() if abs(c) > self.max_share_change]
        return [f for f, _ in sorted(moved, key=lambda fc: -fc[1])]

    @property
    def rank_breached(self) -> dict[str, bool]:
        """NaN (a constant side: no ranking to compare) never breaches."""
        return {"spearman": bool(self.spearman < self.min_spearman), "kendall": bool(self.kendall < self.min_kendall)}

    @property
    def alert(self) -> bool:
        return any(self.rank_breached.values()) or bool(self.jumped)

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """`feature_importance_rank_correlation` {method} and `feature_importance_share`
        {feature} (value: current share; breached when it moved by more than the threshold)."""
        common = SignalScope(model=model, version=version, window_start=window_start, window_end=window_end)
        out = [
            Signal(
                name="feature_importance_rank_correlation",
                value=value,
                threshold=threshold,
                breached=self.rank_breached[method],
                labels={"method": method},
                **common,
            )
            for method, value, threshold in (
                ("spearman", self.spearman, self.min_spearman),
                ("kendall", self.kendall, self.min_kendall),
            )
        ]
        changes = self.share_changes
        out += [
            Signal(
                name="feature_importance_share",
                value=self.current_shares[f],
                threshold=self.max_share_change,
                breached=abs(changes[f]) > self.max_share_change,
                labels={"feature": f},
                **common,
            )
            for f in self.reference_shares
        ]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "spearman": self.spearman,
            "kendall": self.kendall,
            "alert": self.alert,
            "jumped": self.jumped,
            "reference_shares": self.reference_shares,
            "current_shares": self.current_shares,
            "share_changes": self.share_changes,
            "thresholds": {
                "min_spearman": self.min_spearman,
                "min_kendall": self.min_kendall,
                "max_share_change": self.max_share_change,
            },
        }


def compare_importance(
    reference: FeatureImportance | Mapping[str, float],
    current: FeatureImportance | Mapping[str, float],
    *,
    min_spearman: float = MIN_SPEARMAN,
    min_kendall: float = MIN_KENDALL,
    max_share_change: float = MAX_SHARE_CHANGE,
) -> ImportanceShift:
    """Rank correlations of the two importance vectors (aligned by feature name) and share
    changes. Both sides must name the same features."""
    for name, value in (("min_spearman", min_spearman), ("min_kendall", min_kendall)):
        if not -1.0 <= value <= 1.0:
            raise InvalidParameterError(f"{name}: expected a correlation in [-1, 1], got {value!r}")
    if not 0.0 <= max_share_change <= 1.0:
        raise InvalidParameterError(f"max_share_change: expected a share in [0, 1], got {max_share_change!r}")
    ref, cur = as_feature_importance(reference, "reference"), as_feature_importance(current, "current")
    if set(ref.features) != set(cur.features):
        raise DataError(
            f"current: features differ from the reference; only in reference: "
            f"{sorted(set(ref.features) - set(cur.features))}, only in current: "
            f"{sorted(set(cur.features) - set(ref.features))}"
        )
    ref_values, cur_values = ref.as_dict(), cur.as_dict()
    a = np.array([ref_values[f] for f in ref.features])
    b = np.array([cur_values[f] for f in ref.features])
    cur_shares = cur.shares()
    return ImportanceShift(
        spearman(a, b),
        kendall_tau(a, b),
        ref.shares(),
        {f: cur_shares[f] for f in ref.features},
        min_spearman,
        min_kendall,
        max_share_change,
    )


# -- helpers ----------------------------------------------------------------------------------
def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(x) != len(y):
        raise DataError(f"importances: expected two vectors of one length, got {len(x)} and {len(y)}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise DataError("importances: NaN values cannot be ranked")
    return x, y
