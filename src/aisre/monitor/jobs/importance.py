"""The importance check: which inputs the served model's predictions depend on, reference vs window.

A monitoring job has the model's inputs and its predictions in the store, but not always the
model (a remote OIP replica, an LLM API) nor labels. So the importance is measured on a proxy:
a random forest learns the recorded predictions from the numeric inputs (on every other row),
and `aisre.monitor.importance.window_importance` gives its permutation importance on the other
rows, scored against the recorded predictions. Done once on the reference and once per window,
`compare_importance` says whether the ranking moved (the model started leaning on other
inputs, or an input went flat), and with the window's data drift `drift_impact` says whether
the drifted inputs are ones the model relies on. Needs scikit-learn (`aisre[sklearn]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.config.monitor_checks import ImportanceOptions
from aisre.errors import DataError, require
from aisre.monitor.jobs.checks import input_columns, output_columns
from aisre.monitor.jobs.reference import JobReference
from aisre.monitor.tabular.frame import is_numeric
from aisre.records import InferenceRecord, Signal

#: Distinct predictions up to which the proxy is a classifier (else a regressor).
MAX_CLASSES = 20


def _features(opts: ImportanceOptions, reference: JobReference) -> list[str]:
    if opts.features is not None:
        missing = [f for f in opts.features if f not in reference.inputs]
        if missing:
            raise DataError(
                f"importance.features: {missing} are not inputs of the reference {sorted(reference.inputs)}"
            )
        return list(opts.features)
    names = [c for c, v in reference.inputs.items() if is_numeric(v)]
    if len(names) < 2:
        raise DataError(f"importance: needs >= 2 numeric reference inputs to rank, got {names}")
    return names


def _proxy_importance(X: np.ndarray, y: np.ndarray, names: list[str], opts: ImportanceOptions, where: str) -> Any:
    from aisre.monitor.importance import window_importance

    ensemble: Any = require("sklearn.ensemble", "sklearn", "the importance check's proxy model", package="scikit-learn")
    keep = ~(np.isnan(X).any(axis=1) | _missing(y))
    X, y = X[keep], y[keep]
    if len(y) > opts.max_rows:  # an even sample over the window, deterministic
        pick = np.linspace(0, len(y) - 1, opts.max_rows).astype(int)
        X, y = X[pick], y[pick]
    if len(y) < 50:
        raise DataError(f"importance: {where} has {len(y)} rows with every input and a prediction; needs >= 50")
    classify = len(set(y.tolist())) <= MAX_CLASSES
    kind = ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
    proxy = kind(n_estimators=50, max_depth=8, min_samples_leaf=5, random_state=0, n_jobs=1)
    target = y.astype(str) if classify else y.astype(float)
    proxy.fit(X[::2], target[::2])
    return window_importance(
        proxy, X[1::2], target[1::2], feature_names=names, n_repeats=opts.n_repeats, random_state=0
    )


def _missing(y: np.ndarray) -> np.ndarray:
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in y.tolist()], dtype=bool)


def _matrix(inputs: dict[str, Any], names: list[str], where: str) -> np.ndarray:
    absent = [n for n in names if n not in inputs]
    if absent:
        raise DataError(f"importance: {where} lacks the input(s) {absent}")
    bad = [n for n in names if not is_numeric(inputs[n])]
    if bad:
        raise DataError(f"importance: {where} input(s) {bad} are not numeric")
    return np.column_stack([np.asarray(inputs[n], dtype=float) for n in names])


def reference_importance(opts: ImportanceOptions, reference: JobReference) -> Any:
    """The proxy's importance on the reference (cached on it)."""
    if "importance" not in reference.cache:
        names = _features(opts, reference)
        if "prediction" not in reference.outputs:
            raise DataError("importance: the reference has no prediction column to learn the model's behaviour from")
        X = _matrix(reference.inputs, names, "the reference")
        y = np.asarray(reference.outputs["prediction"], dtype=object)
        reference.cache["importance"] = (names, _proxy_importance(X, y, names, opts, "the reference"))
    return reference.cache["importance"]


def importance_signals(
    records: Sequence[InferenceRecord],
    opts: ImportanceOptions,
    reference: JobReference,
    data_drift: Any,
    scope: dict[str, Any],
) -> list[Signal]:
    """`feature_importance_rank_correlation{method}`, `feature_importance_share{feature}` and, when the
    window's data drift is known, `drift_impact` (drifted features' share of the reference importance)."""
    from aisre.monitor.importance import compare_importance, drift_impact

    names, ref_imp = reference_importance(opts, reference)
    outputs = output_columns(records)
    if "prediction" not in outputs:
        raise DataError("importance: the window's records carry no prediction")
    X = _matrix(input_columns(records), names, "the window")
    current = _proxy_importance(X, np.asarray(outputs["prediction"], dtype=object), names, opts, "the window")
    shift = compare_importance(
        ref_imp,
        current,
        min_spearman=opts.min_spearman,
        min_kendall=opts.min_kendall,
        max_share_change=opts.max_share_change,
    )
    out = shift.signals(**scope)
    if data_drift is not None:
        out += drift_impact(ref_imp, data_drift, threshold=opts.drift_impact).signals(**scope)
    return [s for s in out if s.value is not None and np.isfinite(s.value)]
