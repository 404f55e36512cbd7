"""Multiclass metrics with score columns (one per class) on a Spark or Dask DataFrame.

Per partition and per true label, each score column's counts per distinct score and its summed
log loss; on the driver: arg-max predictions, macro one-vs-rest AUC, log loss
(docs/statistics-distributed.md, "Performance"). Split from `performance.py` to keep files small.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.engines.common import Codec
from aisre.monitor.engines.fairness import _text
from aisre.monitor.engines.performance import (
    _NO_INTERVAL,
    _POS,
    CLASSIFICATION,
    _class_names,
    _classification,
    _merge_classification,
    _multiclass,
    _scores_partial,
    auc_from_counts,
    check_column,
)
from aisre.monitor.performance import metrics as pm
from aisre.monitor.performance.intervals import MetricValue
from aisre.monitor.tabular.frame import Columns


def _multiclass_scores(cols: Columns, y_true: str, y_score: tuple[str, ...]) -> dict:
    """Pairs (label, prediction = arg-max column or None), and per label: each score column's counts and log loss."""
    t = _text(cols[y_true])
    score = np.column_stack([np.asarray(cols[c], dtype=np.float64) for c in y_score])
    finite = np.asarray(~np.isnan(score).any(axis=1), dtype=bool)
    best = np.argmax(np.nan_to_num(score, nan=-np.inf), axis=1).tolist()
    preds = [(_POS, int(j)) if f else None for j, f in zip(best, finite.tolist(), strict=True)]
    pairs: dict[tuple[str | None, Any], int] = {}
    for key in zip(t.tolist(), preds, strict=True):
        pairs[key] = pairs.get(key, 0) + 1
    known = np.array([v is not None for v in t.tolist()], dtype=bool) & finite
    per_label: dict[str, dict] = {}
    for label in set(t[known].tolist()):
        rows = known & (t == label)
        s = score[rows]
        ones = np.ones(len(s))
        per_label[label] = {
            "cols": [_scores_partial(s[:, j], ones, np.zeros(len(s)), False) for j in range(len(y_score))],
            "loss": (-np.log(np.clip(s, pm._EPS, 1 - pm._EPS))).sum(axis=0),
        }
    return {"pairs": pairs, "labels": per_label}


def multiclass_frame(
    engine: Any,
    frame: Any,
    y_true: str,
    y_pred: str | None,
    y_score: Any,
    available: Sequence[str],
    wanted: list[str],
    classes: Sequence[Any] | None,
    s: pm.Settings,
) -> tuple[int, dict[str, MetricValue], list[str], None]:
    """Multiclass with score columns (one per class, in `classes` order): arg-max prediction, OvR AUC, log loss."""
    if isinstance(y_score, str) or not isinstance(y_score, list | tuple) or not y_score:
        raise InvalidParameterError(
            f"y_score: multiclass on a frame expects a list of score column names, one per class, got {y_score!r}"
        )
    for name in y_score:
        check_column(available, "y_score", name)
    score_cols = tuple(y_score)
    fn = functools.partial(_multiclass_scores, y_true=y_true, y_score=score_cols)
    used = list(dict.fromkeys([y_true, *score_cols]))
    parts = engine.map_partitions(frame, used, fn, Codec(_merge_classification, pickle.dumps, pickle.loads))
    merged = functools.reduce(_merge_classification, parts) if parts else {"pairs": {}, "labels": {}}
    pairs: dict = merged["pairs"]
    if y_pred is not None:  # predictions from their own column, labels and scores from the score pass
        pred_parts = engine.map_partitions(
            frame,
            list(dict.fromkeys([y_true, y_pred])),
            functools.partial(_classification, y_true=y_true, y_pred=y_pred, y_score=None, pos=None, thr=0.0),
            CLASSIFICATION,
        )
        pairs = functools.reduce(_merge_classification, pred_parts)["pairs"] if pred_parts else {}
    seen_true = {t for t, _ in merged["pairs"] if t is not None}
    names = _class_names({*seen_true, *(v for k in pairs for v in k if isinstance(v, str))}, classes)
    k = len(names)
    if len(score_cols) != k:
        raise DataError(
            f"y_score: expected a matrix with one column per class {names}, got {len(score_cols)} columns; "
            "pass classes=[...] naming the columns"
        )
    if y_pred is None:
        pairs = {(t, None if p is None else names[p[1]]): n for (t, p), n in pairs.items()}
    n = sum(merged["pairs"].values())
    out, _ = _multiclass(pairs, [m for m in wanted if m not in pm.SCORE_METRICS], names, s)
    labels: dict = merged["labels"]
    rows = int(sum(part["cols"][0]["pos"].sum() for part in labels.values())) if labels else 0
    for name in [m for m in wanted if m in pm.SCORE_METRICS]:
        if rows == 0:
            out[name] = pm._empty(name, s, "no rows with the values this metric needs")
        elif name == "log_loss":
            loss = sum(float(part["loss"][names.index(label)]) for label, part in labels.items())
            out[name] = MetricValue(name, loss / rows, np.nan, np.nan, rows, "none", s.confidence, _NO_INTERVAL)
        else:
            out[name] = _ovr_auc(labels, names, rows, s)
    return n, {m: out[m] for m in wanted}, names, None


def _ovr_auc(labels: dict, names: list[str], rows: int, s: pm.Settings) -> MetricValue:
    per_class, grid = [], False
    for j, cls in enumerate(names):
        cells = [part["cols"][j] for part in labels.values()]
        mine = [part["cols"][j] for label, part in labels.items() if label == cls]
        others = [part["cols"][j] for label, part in labels.items() if label != cls]
        values = np.unique(np.concatenate([c["v"] for c in cells]))
        grid = grid or any(c["grid"] for c in cells)

        def counts(group: list[dict], at: np.ndarray = values) -> np.ndarray:
            total = np.zeros(len(at))
            for c in group:
                total[np.searchsorted(at, c["v"])] += c["pos"]
            return total

        pos, neg = counts(mine), counts(others)
        per_class.append(np.nan if pos.sum() == 0 or neg.sum() == 0 else auc_from_counts(pos, neg, s.confidence)[0])
    valid = [v for v in per_class if not np.isnan(v)]
    missing = [j for j, cls in enumerate(names) if cls not in labels]
    notes = [f"one-vs-rest AUC undefined for class index(es) {missing}: absent in y_true"] if missing else []
    if grid:
        notes.append("scores binned to a 2^-20 grid: approximate")
    notes.append(_NO_INTERVAL)
    value = float(np.mean(valid)) if valid else np.nan
    return MetricValue("roc_auc", value, np.nan, np.nan, rows, "none", s.confidence, "; ".join(notes))
