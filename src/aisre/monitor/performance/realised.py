"""Model performance from (late) labels: metrics with intervals, per window, as signals.

    report = performance(y_true, y_pred, y_score, task="binary")
    report.metrics["accuracy"].value, report.metrics["accuracy"].lower
    series = performance_over_time(store.labeled_records(...), window="1h")

Missing labels (None/NaN), predictions or scores drop only the rows a metric needs them
for; `report.n` is the rows given. Degenerate windows give NaN with a note, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.performance import metrics as pm
from aisre.monitor.performance.intervals import MetricValue
from aisre.monitor.tabular.classes import MISSING, as_array, canonical, encode, sort_classes
from aisre.monitor.tabular.labeled import LabeledWindow, as_labeled_window, labeled_window
from aisre.monitor.tabular.windows import OverTime, over_time
from aisre.records import Signal

Task = Literal["binary", "multiclass", "regression"]
__all__ = ["PerformanceReport", "performance", "performance_over_time", "labeled_window"]


@dataclass(frozen=True)
class PerformanceReport:
    """Metrics of one sample. `thresholds` maps a metric to its floor (accuracy, precision,
    recall, f1, roc_auc, r2: breached when below) or ceiling (log_loss, mae, mse, rmse, mape:
    breached when above); a NaN value never breaches."""

    task: str
    n: int
    metrics: dict[str, MetricValue]
    thresholds: dict[str, float] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    pos_label: str | None = None

    @property
    def breaches(self) -> dict[str, bool]:
        return {
            name: _breached(name, self.metrics[name].value, limit)
            for name, limit in self.thresholds.items()
            if name in self.metrics
        }

    def __getitem__(self, name: str) -> MetricValue:
        return self.metrics[name]

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, m in self.metrics.items():
            out[name], out[f"{name}_lower"], out[f"{name}_upper"] = m.value, m.lower, m.upper
        out.update({f"{name}_breached": b for name, b in self.breaches.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n": self.n,
            "classes": self.classes,
            "pos_label": self.pos_label,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "thresholds": dict(self.thresholds),
            "breaches": self.breaches,
        }

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """One signal per metric, named as the metric (`accuracy`, `f1`, `roc_auc`, `mae`...)."""
        breaches = self.breaches
        return [
            Signal(
                model,
                version,
                name,
                m.value,
                self.thresholds.get(name),
                breaches.get(name, False),
                {"metric": name, "task": self.task},
                window_start,
                window_end,
            )
            for name, m in self.metrics.items()
        ]


def _breached(name: str, value: float, limit: float) -> bool:
    if np.isnan(value):
        return False
    return bool(value < limit) if name in pm.HIGHER_IS_BETTER else bool(value > limit)


def performance(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    task: Task = "binary",
    *,
    metrics: Sequence[str] | None = None,
    pos_label: Any = 1,
    classes: Sequence[Any] | None = None,
    decision_threshold: float = 0.5,
    thresholds: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    auc_interval: Literal["delong", "bootstrap"] = "delong",
    data: Any = None,
) -> PerformanceReport:
    """Metrics with confidence intervals for one sample.

    Binary: `y_score` is the positive-class probability (1-D) or a matrix whose columns are
    `classes` (default: the two classes in sorted order); without `y_pred` the prediction
    is `score >= decision_threshold`. Multiclass: `y_score` is (n, k) with columns `classes`
    (default: sorted classes seen); without `y_pred` the prediction is the arg-max.
    Precision, recall and F1 are macro averages for multiclass; a class whose value is
    undefined (never predicted / never true) is left out, as scikit-learn's
    `zero_division=np.nan` does. Regression: MAE, MSE, RMSE, MAPE (a fraction, not percent), R².

    `data`: a Spark or Dask DataFrame (or a local table); then `y_true`, `y_pred`, `y_score` are
    its column names, e.g. `performance("label", "prediction", y_score="score", data=frame)`, and
    the metrics come from per-partition counts and sums (`aisre.monitor.engines.performance`).
    """
    if task not in ("binary", "multiclass", "regression"):
        raise InvalidParameterError(f"task: expected 'binary', 'multiclass' or 'regression', got {task!r}")
    default = pm.REGRESSION_METRICS if task == "regression" else pm.CLASSIFICATION_METRICS
    wanted = list(default if metrics is None else metrics)
    unknown = [m for m in wanted if m not in default]
    if unknown:
        raise InvalidParameterError(f"metrics: unknown for task {task!r}: {unknown}; expected some of {list(default)}")
    limits = dict(thresholds or {})
    bad = [m for m in limits if m not in default]
    if bad:
        raise InvalidParameterError(
            f"thresholds: unknown metric(s) {bad} for task {task!r}; expected some of {list(default)}"
        )
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 < confidence < 1:
        raise InvalidParameterError(f"confidence: expected a level in (0, 1), got {confidence!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise InvalidParameterError(f"n_bootstrap: expected an integer >= 1, got {n_bootstrap!r}")
    settings = pm.Settings(confidence, n_bootstrap, seed, auc_interval)
    if auc_interval not in ("delong", "bootstrap"):
        raise InvalidParameterError(f"auc_interval: expected 'delong' or 'bootstrap', got {auc_interval!r}")
    if data is not None:
        from aisre.monitor.engines.performance import performance as on_frame

        n, values, names, pos = on_frame(
            data,
            y_true,
            y_pred,
            y_score,
            task,
            wanted,
            pos_label=pos_label,
            classes=classes,
            decision_threshold=decision_threshold,
            settings=settings,
        )
        return PerformanceReport(task, n, values, limits, names, pos)
    _not_a_frame(y_true, "y_true", "performance")
    truth = as_array(y_true, "y_true")
    if y_pred is None and y_score is None:
        raise DataError("y_pred, y_score: give predictions, scores, or both")
    pred = None if y_pred is None else as_array(y_pred, "y_pred")
    score = None if y_score is None else _score_array(y_score, len(truth))
    if pred is not None and len(pred) != len(truth):
        raise DataError(f"y_pred: expected {len(truth)} values (one per y_true), got {len(pred)}")
    if task == "regression":
        values = _regression(truth, pred, wanted, settings)
        return PerformanceReport(task, len(truth), values, limits)
    if task == "binary":
        values, names, pos = _binary(truth, pred, score, wanted, pos_label, classes, decision_threshold, settings)
        return PerformanceReport(task, len(truth), values, limits, names, pos)
    values, names = _multiclass(truth, pred, score, wanted, classes, settings)
    return PerformanceReport(task, len(truth), values, limits, names)


def _not_a_frame(value: Any, param: str, fn: str) -> None:
    from aisre.monitor.engines.common import is_distributed  # type names only: no pyspark/dask import

    if is_distributed(value):
        raise InvalidParameterError(
            f"{param}: got a distributed DataFrame; pass it as data= and name the columns, "
            f"e.g. aisre.{fn}(y_true='label', y_pred='prediction', ..., data=frame)"
        )


def _score_array(y_score: Any, n: int) -> np.ndarray:
    if hasattr(y_score, "to_numpy"):
        y_score = y_score.to_numpy()
    try:
        score = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("y_score: expected numbers (probabilities or scores)") from None
    if score.ndim not in (1, 2) or len(score) != n:
        raise DataError(f"y_score: expected {n} rows (one per y_true), got shape {score.shape}")
    return score


def _binary(
    truth: np.ndarray,
    pred: np.ndarray | None,
    score: np.ndarray | None,
    wanted: list[str],
    pos_label: Any,
    classes: Sequence[Any] | None,
    decision_threshold: float,
    s: pm.Settings,
) -> tuple[dict[str, MetricValue], list[str], str]:
    pos = canonical(pos_label)
    if pos is None:
        raise InvalidParameterError(f"pos_label: expected a class label, got {pos_label!r}")
    arrays = [truth] if pred is None else [truth, pred]
    codes, names = encode(arrays)
    extra = [c for c in names if c != pos]
    if len(extra) > 1:
        raise DataError(
            f"y_true/y_pred: binary task expects at most two classes (positive {pos!r} and one other), "
            f"got {names}; set pos_label to one of them, or use task='multiclass'"
        )
    p_idx = names.index(pos) if pos in names else -2
    known_t = codes[0] != MISSING
    t_all = codes[0] == p_idx
    if score is not None and score.ndim == 2:
        cols = [canonical(c) for c in (classes if classes is not None else _two(extra, pos))]
        if len(cols) != score.shape[1] or pos not in cols:
            raise DataError(f"y_score: {score.shape[1]} columns but classes {cols} (positive {pos!r})")
        score = score[:, cols.index(pos)]
    if pred is not None:
        known_p = codes[1] != MISSING
        p_all = codes[1] == p_idx
    elif score is not None:
        known_p = ~np.isnan(score)
        p_all = score >= decision_threshold
    else:
        known_p, p_all = np.zeros(len(truth), bool), None
    rows = known_t & known_p
    p = None if p_all is None else p_all[rows]
    score_rows = known_t & (~np.isnan(score) if score is not None else False)
    out = {}
    for name in wanted:
        if name in pm.SCORE_METRICS:
            sc = None if score is None else score[score_rows]
            out[name] = pm.binary(name, t_all[score_rows], None, sc, s)
        else:
            out[name] = pm.binary(name, t_all[rows], p, None, s)
    return out, names if len(names) == 2 else sorted(set(names) | {pos}), pos


def _two(extra: list[str], pos: str) -> list[str]:
    # Two score columns without `classes`: the two classes in sorted order, as predict_proba.
    if extra:
        return sort_classes([*extra, pos])
    if pos in ("0", "1"):
        return ["0", "1"]
    raise DataError("classes: name the columns of the 2-column y_score, e.g. classes=['no', 'yes']")


def _multiclass(
    truth: np.ndarray,
    pred: np.ndarray | None,
    score: np.ndarray | None,
    wanted: list[str],
    classes: Sequence[Any] | None,
    s: pm.Settings,
) -> tuple[dict[str, MetricValue], list[str]]:
    arrays = [truth] if pred is None else [truth, pred]
    codes, names = encode(arrays, classes)
    k = len(names)
    if score is not None:
        if score.ndim != 2 or score.shape[1] != k:
            raise DataError(
                f"y_score: expected a matrix with one column per class {names}, got shape {score.shape}; "
                "pass classes=[...] naming the columns"
            )
    known_t = codes[0] != MISSING
    if pred is not None:
        p_codes = codes[1]
    elif score is not None:
        finite = ~np.isnan(score).any(axis=1)
        p_codes = np.where(finite, np.argmax(np.nan_to_num(score, nan=-np.inf), axis=1), MISSING)
    else:
        p_codes = None
    rows = known_t & (p_codes != MISSING) if p_codes is not None else known_t
    score_rows = known_t & ~np.isnan(score).any(axis=1) if score is not None else known_t
    out = {}
    for name in wanted:
        out[name] = pm.multiclass(
            name,
            codes[0][rows],
            None if p_codes is None else p_codes[rows],
            codes[0][score_rows],
            None if score is None else score[score_rows],
            k,
            s,
        )
    return out, names


def _regression(
    truth: np.ndarray, pred: np.ndarray | None, wanted: list[str], s: pm.Settings
) -> dict[str, MetricValue]:
    if pred is None:
        raise DataError("y_pred: regression needs predicted values")
    try:
        y = truth.astype(np.float64)
        yhat = pred.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError("y_true/y_pred: regression expects numbers") from None
    rows = ~(np.isnan(y) | np.isnan(yhat))
    return {name: pm.regression(name, y[rows], yhat[rows], s) for name in wanted}


def performance_over_time(
    records_with_labels: Any,
    window: str | float = "1h",
    metrics: Sequence[str] | None = None,
    *,
    task: Task = "binary",
    start: float | None = None,
    end: float | None = None,
    **options: Any,
) -> OverTime:
    """`performance(...)` for each time window: one row per window (empty ones too).

    `records_with_labels` is what `Store.labeled_records` returns (pairs of record and
    label), a `LabeledWindow`, or a table with columns ts, y_true, y_pred (and y_score, the
    positive-class probability). `options` go to `performance` (thresholds, pos_label...).
    """
    data = as_labeled_window(records_with_labels)
    return over_time(data, window, lambda part: _window_report(part, task, metrics, options), start, end)


def _window_report(
    part: LabeledWindow, task: Task, metrics: Sequence[str] | None, options: dict[str, Any]
) -> PerformanceReport:
    kwargs = dict(options)
    if part.y_score is not None and "classes" not in kwargs:
        kwargs["classes"] = part.classes
    has_pred = any(v is not None for v in part.y_pred.tolist()) or part.y_score is None
    return performance(part.y_true, part.y_pred if has_pred else None, part.y_score, task, metrics=metrics, **kwargs)
