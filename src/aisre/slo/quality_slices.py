"""Per-slice quality SLIs (`kind: quality`): a metric over each timeslice's labelled records.

Accuracy, binary precision/recall/F1 (positive class 1) and MAE/MSE/RMSE/MAPE come from the
per-minute sums the store keeps (`events.event_spec`), summed per slice, with `performance`'s
formulas; a slice holding another class or a non-number, and every other metric (ROC AUC from
stored scores, R², a named `pos_label`), is judged by `aisre.monitor.performance.performance` on
the slice's labelled records (`quality_slices_raw`, also the reference the sums are tested against).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from aisre.config.slo import SLOConfig
from aisre.errors import AisreError
from aisre.slo import events_pg
from aisre.slo.events import (
    _BINARY_SUMS,
    _REGRESSION,
    _REGRESSION_SUMS,
    MINUTE_S,
    NotEvaluable,
    Window,
    _grouped,
    _inside,
    _minute_slices,
    _minute_sums,
    _slice_rows,
    _whole_minutes,
    dialect_of,
)
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.monitor.performance.realised import Task


def quality_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:

    metric = slo.sli.metric
    assert metric is not None
    if metric == "accuracy" and _whole_minutes(w):  # correct / judged: the correctness buckets, summed per slice
        return _accuracy_slices(slo, store, w)
    if _whole_minutes(w) and ((metric in _BINARY_SUMS and slo.sli.pos_label is None) or metric in _REGRESSION_SUMS):
        return _summed_quality_slices(slo, store, w)
    return quality_slices_raw(slo, store, w)


def quality_slices_raw(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """`metric` per slice by `performance` on the slice's labelled records (the reference; and
    what metrics without per-minute sums use). Reads from the labels: they are few beside records."""
    from aisre.monitor.performance import performance  # the one implementation of every metric

    metric = slo.sli.metric
    assert metric is not None
    if dialect_of(store) == "postgresql":  # the values SQLite's json_extract would give, decoded here
        columns = "(i.body::json -> 'prediction')::text, l.value, (i.body::json -> 'scores')::text"
        convert = events_pg.sqlite_json_value
        rows: Any = [
            (k, convert(p), v, convert(sc)) for k, p, v, sc in _slice_rows(slo, store, w, columns, labelled=True)
        ]
    else:
        columns = "json_extract(i.body, '$.prediction'), l.value, json_extract(i.body, '$.scores')"
        rows = _slice_rows(slo, store, w, columns, labelled=True)
    good, total = np.zeros(w.n), np.zeros(w.n)
    by_score = metric in _SCORE_METRICS
    scored = False
    for k, triples in _grouped(rows, w.n).items():
        if by_score:  # ROC AUC ranks the records' scores: only records that have them
            triples = [t for t in triples if t[2] is not None]
            if not triples:
                continue
            scored = True
        y_pred = [p for p, _, _ in triples]
        y_true = [orjson.loads(v) if v is not None else None for _, v, _ in triples]
        task: Task = "regression" if metric in _REGRESSION else _task(y_true, y_pred, slo.sli.pos_label)
        pos_label = 1 if slo.sli.pos_label is None else slo.sli.pos_label
        try:
            options = _score_options([sc for _, _, sc in triples]) if by_score else {}
            report = performance(
                y_true, y_pred, task=task, metrics=[metric], n_bootstrap=1, pos_label=pos_label, **options
            )
        except AisreError as exc:
            raise NotEvaluable(f"quality {metric}: {exc}") from None
        value = report.metrics[metric].value
        if math.isnan(value):  # an undefined metric (e.g. recall with no positive) judges nothing
            continue
        total[k] = 1.0
        good[k] = float(_inside(value, slo.sli.min, slo.sli.max))
    if by_score and not scored and w.n and _grouped(_slice_rows(slo, store, w, "1", labelled=True), w.n):
        raise NotEvaluable(
            f"quality {metric}: needs the records' scores (record scores=...); no labelled record has them"
        )
    return good, total


_SCORE_METRICS = frozenset({"roc_auc"})


def _score_options(scores: list[Any]) -> dict[str, Any]:
    """`y_score` (and `classes`) for `performance` from stored scores: a number per record (the
    positive class's probability), a list per record (columns in sorted class order, as
    `predict_proba`), or a mapping class -> probability (columns: the mapping's keys, sorted)."""
    values = [orjson.loads(s) if isinstance(s, str) else s for s in scores]
    if all(isinstance(v, dict) for v in values):
        classes = sorted({str(c) for v in values for c in v})
        return {"y_score": [[float(v.get(c, math.nan)) for c in classes] for v in values], "classes": classes}
    return {"y_score": values}


def _summed_quality_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """Binary precision/recall/F1 and MAE/MSE/RMSE/MAPE per slice from the per-minute sums.

    The formulas are `performance`'s: precision tp/predicted positives, recall tp/positives, F1
    2tp/(predicted + actual positives), undefined (not counted) on a zero denominator; MAE, MSE,
    MAPE means, RMSE the root of MSE. A slice holding another class (or a non-number for
    regression) is judged from its records instead, so the result is always `performance`'s.
    """
    metric = slo.sli.metric
    assert metric is not None
    per = int(round(w.step_s / MINUTE_S))
    sums = _minute_sums(slo, store, Window(w.start_s, w.start_s + w.n * w.step_s, MINUTE_S))
    sums = sums.reshape(len(sums), w.n, per).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in _BINARY_SUMS:
            tp, predicted, actual, other = sums
            value = {"precision": tp / predicted, "recall": tp / actual, "f1": 2 * tp / (predicted + actual)}[metric]
        else:
            n, abs_err, sq_err, ape, other = sums
            value = {"mae": abs_err / n, "mse": sq_err / n, "rmse": np.sqrt(sq_err / n), "mape": ape / n}[metric]
    judged = ~np.isnan(value)
    low = -math.inf if slo.sli.min is None else slo.sli.min
    high = math.inf if slo.sli.max is None else slo.sli.max
    good = (judged & (value >= low) & (value <= high)).astype(np.float64)
    total = judged.astype(np.float64)
    if np.any(other > 0):  # another class / a non-number in some slices: those from their records
        raw_good, raw_total = quality_slices_raw(slo, store, w)
        mixed = other > 0
        good[mixed], total[mixed] = raw_good[mixed], raw_total[mixed]
    return good, total


def _accuracy_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    correct, judged = _minute_slices(slo, store, w)
    has = judged > 0
    accuracy = correct / np.where(has, judged, 1)
    low = -math.inf if slo.sli.min is None else slo.sli.min
    high = math.inf if slo.sli.max is None else slo.sli.max
    return (has & (accuracy >= low) & (accuracy <= high)).astype(np.float64), has.astype(np.float64)


def _task(y_true: list[Any], y_pred: list[Any], pos_label: Any = None) -> Task:
    if pos_label is not None:  # a named positive class: binary (performance names a third class)
        return "binary"
    classes = {str(v).lower() for v in [*y_true, *y_pred] if v is not None}
    return "binary" if classes <= {"0", "1", "true", "false"} else "multiclass"
