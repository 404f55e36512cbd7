"""Multiclass metrics with score columns (one per class) on a Spark or Dask DataFrame.

Per partition and per true label, each score column's counts per distinct score and its summed
log loss; on the driver: arg-max predictions, macro one-vs-rest AUC, log loss
(docs/statistics-distributed.md, "Performance"); their intervals from a second pass of
Poisson-bootstrap replicates (`engines/bootstrap_auc.py`). Split from `performance.py` to keep files small.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.engines import bootstrap, bootstrap_auc
from aisre.monitor.engines.bootstrap import Replicates
from aisre.monitor.engines.common import Codec
from aisre.monitor.engines.fairness import _text
from aisre.monitor.engines.performance import (
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
from aisre.monitor.performance import intervals as ci
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
    scored = [m for m in wanted if m in pm.SCORE_METRICS]
    if rows == 0:
        out.update({name: pm._empty(name, s, "no rows with the values this metric needs") for name in scored})
    elif scored:
        out.update(_score_metrics(engine, frame, y_true, score_cols, names, labels, rows, scored, s))
    return n, {m: out[m] for m in wanted}, names, None


def _column_counts(labels: dict, names: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Per score column j: (sorted distinct scores, rows labelled names[j] at each, all rows at each, gridded)."""
    out = []
    for j, cls in enumerate(names):
        cells = [part["cols"][j] for part in labels.values()]
        values = np.unique(np.concatenate([c["v"] for c in cells]))
        mine, total = np.zeros(len(values)), np.zeros(len(values))
        for label, part in labels.items():
            c = part["cols"][j]
            at = np.searchsorted(values, c["v"])
            total[at] += c["pos"]
            if label == cls:
                mine[at] += c["pos"]
        out.append((values, mine, total, any(c["grid"] for c in cells)))
    return out


def _score_metrics(
    engine: Any,
    frame: Any,
    y_true: str,
    score_cols: tuple[str, ...],
    names: list[str],
    labels: dict,
    rows: int,
    scored: list[str],
    s: pm.Settings,
) -> dict[str, MetricValue]:
    """Log loss and macro OvR AUC with Poisson-bootstrap intervals: one second pass for both."""
    columns = _column_counts(labels, names)
    per_class, bounds = [], []
    for _, mine, total, _ in columns:
        neg = total - mine
        if mine.sum() == 0 or neg.sum() == 0:
            per_class.append(np.nan)
            bounds.append(np.nan)
        else:
            auc, _, _, bound = auc_from_counts(mine, neg, s.confidence)
            per_class.append(auc)
            bounds.append(bound)
    defined = [v for v in per_class if not np.isnan(v)]
    auc_value = float(np.mean(defined)) if defined else np.nan
    auc_note = _auc_note(names, labels, columns, bounds)
    loss_value = sum(float(part["loss"][names.index(label)]) for label, part in labels.items()) / rows
    reps = Replicates.of(s.n_bootstrap, s.seed)
    cells = bootstrap_auc.cell_count(reps.count, len(names))
    want_auc = "roc_auc" in scored and defined and cells >= bootstrap_auc.MIN_CELLS
    col_cuts = [bootstrap_auc.cuts(v, total, cells) for v, _, total, _ in columns] if want_auc else None
    if "log_loss" not in scored and col_cuts is None:
        merged = None
    else:
        merged = bootstrap_auc.second_pass(
            engine, frame, list(dict.fromkeys([y_true, *score_cols])), bootstrap_auc.multiclass_counts,
            y_true=y_true, y_score=score_cols, names=tuple(names), reps=reps, col_cuts=col_cuts, eps=pm._EPS,
        )  # fmt: skip
    out: dict[str, MetricValue] = {}
    lost = "interval undefined: no rows on the bootstrap pass"
    if "log_loss" in scored:
        if merged is None:
            out["log_loss"] = bootstrap_auc.no_interval("log_loss", loss_value, rows, lost, s.confidence, None)
        else:
            reps_loss = ci._ratio(merged["loss"], merged["w"])
            out["log_loss"] = bootstrap.metric("log_loss", loss_value, rows, reps_loss, s.confidence)
    if "roc_auc" in scored:
        if not defined:
            out["roc_auc"] = MetricValue("roc_auc", np.nan, np.nan, np.nan, rows, "none", s.confidence, auc_note)
        elif col_cuts is None or merged is None:
            why = bootstrap_auc.over_budget(reps, len(names)) if col_cuts is None else lost
            out["roc_auc"] = bootstrap_auc.no_interval("roc_auc", auc_value, rows, why, s.confidence, auc_note)
        else:
            shifted, bound = bootstrap_auc.shifted_replicates(merged, np.array(per_class))
            distinct = all(len(v) <= cells for v, _, _, _ in columns)
            cell_note = bootstrap_auc.grid_note(max(len(c) for c in col_cuts) + 1, distinct, bound)
            note = "; ".join(filter(None, [auc_note, cell_note]))
            out["roc_auc"] = bootstrap.metric("roc_auc", auc_value, rows, ci._macro(shifted), s.confidence, note)
    return out


def _auc_note(names: list[str], labels: dict, columns: list, bounds: list[float]) -> str | None:
    """Classes absent from y_true; with the 2^-20 grid, each class's bound and the macro bound (their mean)."""
    missing = [j for j, cls in enumerate(names) if cls not in labels]
    notes = [f"one-vs-rest AUC undefined for class index(es) {missing}: absent in y_true"] if missing else []
    if any(grid for *_, grid in columns):
        finite = [b for b in bounds if not np.isnan(b)]
        per = ", ".join(f"{b:.3g}" for b in finite)
        notes.append(
            f"scores binned to a 2^-20 grid: per-class |error| <= [{per}], macro |error| <= {np.mean(finite):.3g}"
        )
    return "; ".join(notes) or None
