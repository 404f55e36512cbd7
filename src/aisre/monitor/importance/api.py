"""Feature importance per window (permutation with labels, else the model's own); the monitoring entry point.

    ref = window_importance(model, X_ref, y_ref)          # permutation importance (labels)
    cur = window_importance(model, X_cur)                 # model's own importances (no labels)
    shift = compare_importance(ref, cur)                  # Spearman / Kendall / share jumps
    impact = drift_impact(ref, drift_report)              # which drifted features matter

Importances are permutation importances (`sklearn.inspection.permutation_importance` itself:
the decrease of a score when one column is shuffled, `n_repeats` times, seeded) when labels
exist, else the model's `feature_importances_` or `|coef_|`. The result type lives in
`values.py`, the ranking comparison in `ranking.py`, drift impact in
`drift_impact.py`; all are importable from here. Definitions and the reasons for the default
thresholds: docs/statistics-importance-llm.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError, require
from aisre.monitor.importance.drift_impact import DRIFT_IMPACT_THRESHOLD, DriftImpact, drift_impact
from aisre.monitor.importance.ranking import (
    MAX_SHARE_CHANGE,
    MIN_KENDALL,
    MIN_SPEARMAN,
    ImportanceShift,
    compare_importance,
    kendall_tau,
    spearman,
)
from aisre.monitor.importance.values import FeatureImportance
from aisre.monitor.tabular.frame import is_numeric, to_columns
from aisre.records import Label

__all__ = [
    "DRIFT_IMPACT_THRESHOLD",
    "MAX_SHARE_CHANGE",
    "MIN_KENDALL",
    "MIN_SPEARMAN",
    "DriftImpact",
    "FeatureImportance",
    "ImportanceShift",
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

Scorer = Callable[[Any, Any, Any], float]


# -- importance per window --------------------------------------------------------------------
def permutation_importance(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    scoring: str | Scorer | None = None,
    n_repeats: int = 5,
    random_state: int | np.random.RandomState = 0,
    feature_names: Sequence[str] | None = None,
) -> FeatureImportance:
    """Permutation importance by `sklearn.inspection.permutation_importance` itself.

    The decrease of a score when one column is shuffled, `n_repeats` times, seeded by
    `random_state`; the default score is `estimator.score`. `X` is a pandas DataFrame, a
    numpy array, or any table `to_columns` accepts (converted to a float array; every
    column must be numeric). Needs the `aisre[sklearn]` extra. Cost: n_features x n_repeats
    predictions over the window (plus one for the baseline); sample big windows first.
    """
    if not isinstance(n_repeats, int) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise InvalidParameterError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    _check_scoring(estimator, scoring)
    inspection = _sklearn("inspection")
    X, names = _as_matrix(X, feature_names)
    y = np.asarray(y)
    if len(y) != X.shape[0]:
        raise DataError(f"y: expected {X.shape[0]} labels (one per row of X), got {len(y)}")
    scorer = _sklearn("metrics").check_scoring(estimator, scoring=scoring)
    baseline = float(scorer(estimator, X, y))  # sklearn scores it too, but does not return it
    result = inspection.permutation_importance(
        estimator, X, y, scoring=scorer, n_repeats=n_repeats, random_state=random_state
    )
    return FeatureImportance(
        tuple(names),
        result.importances_mean,
        "permutation",
        result.importances_std,
        result.importances,
        baseline,
        int(X.shape[0]),
    )


def model_importance(estimator: Any, feature_names: Sequence[str] | None = None) -> FeatureImportance:
    """The model's own importances: `feature_importances_`, else mean |coef_| over outputs.

    A pipeline is looked through to its last step. Coefficients are comparable only when
    the inputs are on one scale (standardised), which is why permutation is preferred.
    """
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(final, "feature_importances_"):
        values, method = np.asarray(final.feature_importances_, dtype=float), "feature_importances_"
    elif hasattr(final, "coef_"):
        coef = np.abs(np.asarray(final.coef_, dtype=float))
        values, method = (coef if coef.ndim == 1 else coef.mean(axis=0)), "coef_"
    else:
        raise DataError(
            f"estimator {type(final).__name__} has neither feature_importances_ nor coef_; "
            "pass labels (y) to get permutation importance instead"
        )
    names = _names(estimator, feature_names, len(values))
    return FeatureImportance(names, values, method)


def window_importance(estimator: Any, X: Any = None, y: Any = None, **permutation: Any) -> FeatureImportance:
    """Permutation importance when the window is labelled (`y` given), else the model's own."""
    if y is None:
        names = permutation.get("feature_names")
        if names is None and X is not None:
            names = _as_matrix(X, None)[1]
        return model_importance(estimator, names)
    return permutation_importance(estimator, X, y, **permutation)


def labelled_window(
    pairs: Sequence[tuple[Any, Label | None]], features: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Rows of inputs and the labels of a window read with `store.labeled_records(...)`.

    Unlabelled pairs are skipped. Each record's `inputs` must be a mapping of feature name
    to value (what `Monitor.record` and `instrument` store for tabular models).
    """
    rows, labels = [], []
    for record, label in pairs:
        if label is None:
            continue
        if not isinstance(record.inputs, Mapping):
            raise DataError(
                f"record {record.id}: inputs must be a mapping of feature name to value, "
                f"got {type(record.inputs).__name__}"
            )
        rows.append({k: record.inputs.get(k) for k in features} if features else dict(record.inputs))
        labels.append(label.value)
    return rows, np.asarray(labels)


# -- helpers ----------------------------------------------------------------------------------
def _sklearn(name: str) -> Any:
    # scikit-learn is an optional extra: importing this module works without it
    return require(f"sklearn.{name}", "sklearn", "permutation importance", package="scikit-learn")


def _check_scoring(estimator: Any, scoring: str | Scorer | None) -> None:
    if scoring is None and not hasattr(estimator, "score"):
        raise InvalidParameterError(f"scoring: {type(estimator).__name__} has no score(); pass a scorer")
    if scoring is not None and not isinstance(scoring, str) and not callable(scoring):
        raise InvalidParameterError(f"scoring: expected None, a scorer name or a callable, got {scoring!r}")


def _as_matrix(X: Any, feature_names: Sequence[str] | None) -> tuple[Any, list[str]]:
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        return X, [str(c) for c in X.columns]
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise DataError(f"X: expected a 2-D array (rows x features), got shape {X.shape}")
        return X, list(_names(None, feature_names, X.shape[1]))
    columns = to_columns(X, feature_names)
    for name, values in columns.items():
        if not is_numeric(values):
            raise DataError(f"X: column {name!r} is not numeric; pass a DataFrame to keep its types")
    if not columns:
        raise DataError("X: expected at least one feature column")
    return np.column_stack(list(columns.values())), list(columns)


def _names(estimator: Any, feature_names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if feature_names is None and estimator is not None:
        feature_names = getattr(estimator, "feature_names_in_", None)
    names = tuple(str(f) for f in feature_names) if feature_names is not None else tuple(f"x{i}" for i in range(n))
    if len(names) != n:
        raise DataError(f"feature_names: expected {n} names, got {len(names)}")
    return names
