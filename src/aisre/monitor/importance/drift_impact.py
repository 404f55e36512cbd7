"""Drift impact: which drifted features matter, by their share of the reference importance, as a signal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.importance.values import FeatureImportance, as_feature_importance
from aisre.records import Signal

DRIFT_IMPACT_THRESHOLD = 0.20
"""Alert when drifted features carry >= 20% of the reference importance."""


@dataclass(frozen=True, slots=True)
class DriftImpact:
    """Drifted features ranked by reference importance share; `score` is their share sum."""

    drifted: list[tuple[str, float]]
    score: float
    threshold: float = DRIFT_IMPACT_THRESHOLD
    statistics: dict[str, float] = field(default_factory=dict)
    unranked: list[str] = field(default_factory=list)

    @property
    def breached(self) -> bool:
        return self.score >= self.threshold

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        return [
            Signal(
                model, version, "drift_impact", self.score, self.threshold, self.breached, {}, window_start, window_end
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "breached": self.breached,
            "drifted": [{"feature": f, "share": s, "statistic": self.statistics.get(f)} for f, s in self.drifted],
            "unranked": self.unranked,
        }


def drift_impact(
    importance: FeatureImportance | Mapping[str, float],
    drift_results: Any,
    *,
    threshold: float = DRIFT_IMPACT_THRESHOLD,
) -> DriftImpact:
    """Which drifted features matter, by their share of the reference importance.

    `drift_results` maps column -> result: an object with `.drift` (and `.statistic`), such
    as `aisre.monitor.drift` column results; a mapping with "drift"/"statistic" keys; or a
    bool. A report with `.columns` is read through. Drifted columns the model does not use
    are listed in `unranked` and add nothing to the score.
    """
    if not 0.0 <= threshold <= 1.0:
        raise InvalidParameterError(f"threshold: expected a share in [0, 1], got {threshold!r}")
    shares = as_feature_importance(importance, "importance").shares()
    results = getattr(drift_results, "columns", drift_results)
    if not isinstance(results, Mapping):
        raise DataError(f"drift_results: expected a mapping of column -> drift result, got {type(results).__name__}")
    drifted, statistics, unranked = [], {}, []
    for column, result in results.items():
        flag, statistic = _drift_flag(column, result)
        if not flag:
            continue
        if statistic is not None:
            statistics[column] = statistic
        if column in shares:
            drifted.append((column, shares[column]))
        else:
            unranked.append(column)
    drifted.sort(key=lambda fs: -fs[1])
    return DriftImpact(drifted, float(sum(s for _, s in drifted)), threshold, statistics, unranked)


def _drift_flag(column: str, result: Any) -> tuple[bool, float | None]:
    if isinstance(result, bool | np.bool_):
        return bool(result), None
    if isinstance(result, Mapping):
        if "drift" not in result:
            raise DataError(f"drift_results[{column!r}]: expected a 'drift' key, got {sorted(result)}")
        flag, statistic = result["drift"], result.get("statistic")
    elif hasattr(result, "drift"):
        flag, statistic = result.drift, getattr(result, "statistic", None)
    else:
        raise DataError(
            f"drift_results[{column!r}]: expected a bool, a mapping with 'drift' or an object "
            f"with .drift, got {type(result).__name__}"
        )
    return bool(flag), None if statistic is None else float(statistic)
