"""Feature importance per window, shifts in the ranking, and which drifted features matter."""

from aisre.monitor.importance.api import (
    DRIFT_IMPACT_THRESHOLD,
    MAX_SHARE_CHANGE,
    MIN_KENDALL,
    MIN_SPEARMAN,
    DriftImpact,
    FeatureImportance,
    ImportanceShift,
    Scorer,
    compare_importance,
    drift_impact,
    kendall_tau,
    labelled_window,
    model_importance,
    permutation_importance,
    spearman,
    window_importance,
)

__all__ = [
    "DRIFT_IMPACT_THRESHOLD",
    "DriftImpact",
    "FeatureImportance",
    "ImportanceShift",
    "MAX_SHARE_CHANGE",
    "MIN_KENDALL",
    "MIN_SPEARMAN",
    "Scorer",
    "compare_importance",
    "drift_impact",
    "kendall_tau",
    "labelled_window",
    "model_importance",
    "permutation_importance",
    "spearman",
    "window_importance",
]
