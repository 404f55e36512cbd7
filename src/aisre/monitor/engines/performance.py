"""`aisre.performance(data=frame, ...)` on a Spark or Dask DataFrame: counts and sums per partition, merged.

Each partition returns a small partial (docs/statistics-distributed.md, "Performance"):
classification: the count of each (label, prediction) pair and, with a score column, the
count of positive and negative labels at each distinct score (a 2^-20 grid once a partial
holds more than `EXACT_SCORES` distinct scores) plus the sum of per-row log loss; regression:
n, the sums of |e|, e², |e|/max(|y|, eps) and (mean, M2) of y merged by Chan's formula.
On the driver: accuracy, precision, recall (Wilson) and F1 / macro scores (the multinomial
count bootstrap, same seed) are exactly `aisre.performance`'s, being functions of the counts;
ROC AUC and its DeLong interval come from the per-score counts (exact without the grid; with
it, the stated bound is in the note); means of rows are exact up to float summation order.
Intervals that `aisre.performance` bootstraps over raw rows (MAE, MSE, RMSE, MAPE, R², log
loss, a bootstrap AUC) are Poisson-bootstrap intervals (method "poisson_bootstrap"): per-replicate
weighted sums from each partition (`engines/bootstrap.py`, `engines/bootstrap_auc.py`).
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
from aisre.monitor.engines.common import Codec, engine_for
from aisre.monitor.engines.fairness import _text
from aisre.monitor.performance import intervals as ci
from aisre.monitor.performance import metrics as pm
from aisre.monitor.performance.intervals import MetricValue
from aisre.monitor.tabular.classes import canonical, sort_classes
from aisre.monitor.tabular.frame import Columns

#: Distinct scores a partial keeps exactly; beyond, scores are floored to a 2^-20 grid.
EXACT_SCORES = 1 << 16
GRID = float(1 << 20)
_POS, _NEG = "\x00predicted-positive", "\x00predicted-negative"  # prediction from score >= threshold


def check_column(frame_columns: Sequence[str], param: str, name: Any) -> None:
    """A column parameter must name a column of the frame: InvalidParameterError otherwise."""
    if not isinstance(name, str) or name not in frame_columns:
        raise InvalidParameterError(
            f"{param}: expected a column name of the frame given as data=, got {name!r}; "
            f"it has: {list(frame_columns)[:30]}"
        )


# -- partials ------------------------------------------------------------------------------
def _scores_partial(values: np.ndarray, pos: np.ndarray, neg: np.ndarray, grid: bool) -> dict:
    if not grid and len(values) > EXACT_SCORES:
        grid = True
    if grid:
        values = np.floor(values * GRID) / GRID
    uniq, inverse = np.unique(values, return_inverse=True)
    return {
        "v": uniq,
        "pos": np.bincount(inverse, weights=pos, minlength=len(uniq)),
        "neg": np.bincount(inverse, weights=neg, minlength=len(uniq)),
        "grid": grid,
    }


def _classification(
    cols: Columns,
    y_true: str,
    y_pred: str | None,
    y_score: str | None,
    pos: str | None,
    thr: float,
    reps: Replicates | None = None,
) -> dict:
    t = _text(cols[y_true])
    out: dict[str, Any] = {}
    score = None if y_score is None else np.asarray(cols[y_score], dtype=np.float64)
    if y_pred is not None:
        p = _text(cols[y_pred])
    elif score is not None:
        p = np.array([None if np.isnan(v) else (_POS if v >= thr else _NEG) for v in score.tolist()], dtype=object)
    else:
        p = np.full(len(t), None, dtype=object)
    pairs: dict[tuple[str | None, str | None], int] = {}
    for key in zip(t.tolist(), p.tolist(), strict=True):
        pairs[key] = pairs.get(key, 0) + 1
    out["pairs"] = pairs
    if score is not None:
        rows = np.array([v is not None for v in t.tolist()], dtype=bool) & ~np.isnan(score)
        s, is_pos = score[rows], (t[rows] == pos).astype(bool)
        out["scores"] = _scores_partial(s, is_pos.astype(float), (~is_pos).astype(float), False)
        clipped = np.where(is_pos, np.clip(s, pm._EPS, 1 - pm._EPS), np.clip(1.0 - s, pm._EPS, 1 - pm._EPS))
        loss = -np.log(clipped)
        out["loss"] = float(np.sum(loss))
        if reps is not None:  # per replicate: Σw, Σw·loss
            out["boot_loss"] = reps.sums(np.column_stack([np.ones(len(s)), loss]), is_pos, s)
        out["outside"] = bool(np.any((s < 0) | (s > 1)))
    return out


def _merge_labels(a: dict, b: dict) -> dict:
    out = dict(a)
    for label, part in b.items():
        if label not in out:
            out[label] = part
            continue
        mine = out[label]
        cols = [
            _scores_partial(
                np.concatenate([x["v"], y["v"]]),
                np.concatenate([x["pos"], y["pos"]]),
                np.concatenate([x["neg"], y["neg"]]),
                x["grid"] or y["grid"],
            )
            for x, y in zip(mine["cols"], part["cols"], strict=True)
        ]
        out[label] = {"cols": cols, "loss": mine["loss"] + part["loss"]}
    return out


def _merge_classification(a: dict, b: dict) -> dict:
    pairs = dict(a["pairs"])
    for key, n in b["pairs"].items():
        pairs[key] = pairs.get(key, 0) + n
    out: dict[str, Any] = {"pairs": pairs}
    if "labels" in a:
        out["labels"] = _merge_labels(a["labels"], b["labels"])
    if "scores" in a:
        sa, sb = a["scores"], b["scores"]
        out["scores"] = _scores_partial(
            np.concatenate([sa["v"], sb["v"]]),
            np.concatenate([sa["pos"], sb["pos"]]),
            np.concatenate([sa["neg"], sb["neg"]]),
            sa["grid"] or sb["grid"],
        )
        out["loss"], out["outside"] = a["loss"] + b["loss"], a["outside"] or b["outside"]
        out["boot_loss"] = bootstrap.add(a.get("boot_loss"), b.get("boot_loss"))
    return out


def _regression(cols: Columns, y_true: str, y_pred: str, reps: Replicates | None = None) -> dict:
    try:
        y = np.asarray(cols[y_true], dtype=np.float64)
        yhat = np.asarray(cols[y_pred], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("y_true/y_pred: regression expects numbers") from None
    rows = ~(np.isnan(y) | np.isnan(yhat))
    y, err = y[rows], yhat[rows] - y[rows]
    n = len(y)
    mean = float(y.mean()) if n else 0.0
    return {
        "rows": len(rows),
        "n": n,
        "abs": float(np.abs(err).sum()),
        "sq": float((err * err).sum()),
        "ape": float((np.abs(err) / np.maximum(np.abs(y), pm._EPS)).sum()),
        "mean": mean,
        "m2": float(((y - mean) ** 2).sum()),
        "min": float(y.min()) if n else np.inf,
        "max": float(y.max()) if n else -np.inf,
        "boot": bootstrap.regression_partial(reps, y, yhat[rows], pm._EPS) if reps is not None and n else None,
    }


def _merge_regression(a: dict, b: dict) -> dict:
    n = a["n"] + b["n"]
    if n == 0:
        return {**a, "rows": a["rows"] + b["rows"]}
    delta = b["mean"] - a["mean"]
    out = {k: a[k] + b[k] for k in ("rows", "abs", "sq", "ape")}
    out.update(
        n=n,
        mean=a["mean"] + delta * b["n"] / n,
        m2=a["m2"] + b["m2"] + delta * delta * a["n"] * b["n"] / n,  # Chan et al. (1979)
        min=min(a["min"], b["min"]),
        max=max(a["max"], b["max"]),
        boot=bootstrap.merge_regression(a["boot"], b["boot"]),
    )
    return out


CLASSIFICATION = Codec(_merge_classification, pickle.dumps, pickle.loads)
REGRESSION = Codec(_merge_regression, pickle.dumps, pickle.loads)


# -- driver --------------------------------------------------------------------------------
def performance(
    frame: Any,
    y_true: Any,
    y_pred: Any,
    y_score: Any,
    task: str,
    wanted: list[str],
    *,
    pos_label: Any,
    classes: Sequence[Any] | None,
    decision_threshold: float,
    settings: pm.Settings,
) -> tuple[int, dict[str, MetricValue], list[str], str | None]:
    """(rows, metrics, classes, positive class) of a frame; arguments already validated by `aisre.performance`."""
    engine = engine_for(frame)
    available = engine.columns(frame)
    check_column(available, "y_true", y_true)
    if y_pred is not None:
        check_column(available, "y_pred", y_pred)
    if y_score is not None and not (task == "multiclass" and isinstance(y_score, list | tuple)):
        check_column(available, "y_score", y_score)
    if y_pred is None and y_score is None:
        raise DataError("y_pred, y_score: give predictions, scores, or both")
    used = list(dict.fromkeys(c for c in (y_true, y_pred, y_score) if isinstance(c, str)))
    if task == "regression":
        if y_pred is None:
            raise DataError("y_pred: regression needs predicted values")
        reps = Replicates.of(settings.n_bootstrap, settings.seed)
        fn = functools.partial(_regression, y_true=y_true, y_pred=y_pred, reps=reps)
        parts = engine.map_partitions(frame, used, fn, REGRESSION)
        empty = _regression({y_true: np.empty(0), y_pred: np.empty(0)}, y_true, y_pred)
        sums = functools.reduce(_merge_regression, parts, empty)
        return sums["rows"], {m: _regression_metric(m, sums, settings) for m in wanted}, [], None
    if task == "multiclass" and y_score is not None:
        from aisre.monitor.engines.performance_multiclass import multiclass_frame

        return multiclass_frame(engine, frame, y_true, y_pred, y_score, available, wanted, classes, settings)
    pos = canonical(pos_label)
    if task == "binary" and pos is None:
        raise InvalidParameterError(f"pos_label: expected a class label, got {pos_label!r}")
    loss_reps = Replicates.of(settings.n_bootstrap, settings.seed) if "log_loss" in wanted else None
    fn = functools.partial(
        _classification, y_true=y_true, y_pred=y_pred, y_score=y_score, pos=pos, thr=decision_threshold, reps=loss_reps
    )
    parts = engine.map_partitions(frame, used, fn, CLASSIFICATION)
    merged = functools.reduce(_merge_classification, parts) if parts else {"pairs": {}}
    n = sum(merged["pairs"].values())
    if task == "binary":
        values, names = _binary(merged, wanted, pos, y_pred is not None, y_score is not None, settings)
        auc = values.get("roc_auc")
        if settings.auc_interval == "bootstrap" and auc is not None and auc.method == "bootstrap":
            values["roc_auc"] = bootstrap_auc.binary_auc(
                engine, frame, y_true, y_score, str(pos), merged["scores"], auc.value, auc.n, settings, auc.note
            )
        return n, values, names, pos
    values, names = _multiclass(merged["pairs"], wanted, classes, settings)
    return n, values, names, None


def _binary(
    merged: dict, wanted: list[str], pos: str | None, has_pred: bool, has_score: bool, s: pm.Settings
) -> tuple[dict[str, MetricValue], list[str]]:
    pairs: dict = merged["pairs"]
    seen = {t for t, _ in pairs if t is not None} | ({p for _, p in pairs if p is not None} if has_pred else set())
    names = sort_classes(list(seen))
    extra = [c for c in names if c != pos]
    if len(extra) > 1:
        raise DataError(
            f"y_true/y_pred: binary task expects at most two classes (positive {pos!r} and one other), "
            f"got {names}; set pos_label to one of them, or use task='multiclass'"
        )
    cm = np.zeros((2, 2))
    for (t, p), count in pairs.items():
        if t is not None and p is not None:
            cm[int(t == pos), int(p == pos or p == _POS)] += count
    out = {}
    for name in wanted:
        if name in pm.SCORE_METRICS:
            out[name] = _score_metric(name, merged, s) if has_score else pm._empty(name, s, "needs scores (y_score)")
        elif not (has_pred or has_score):
            out[name] = pm._empty(name, s, "needs predictions (y_pred) or scores (y_score)")
        elif name == "accuracy":
            out[name] = pm._proportion(name, int(cm[0, 0] + cm[1, 1]), int(cm.sum()), s, "rows")
        elif name == "precision":
            out[name] = pm._proportion(name, int(cm[1, 1]), int(cm[:, 1].sum()), s, "positive predictions")
        elif name == "recall":
            out[name] = pm._proportion(name, int(cm[1, 1]), int(cm[1].sum()), s, "positive labels")
        else:  # f1
            out[name] = pm._boot_counts(name, ci.f1_binary, cm, s, "undefined: no positive labels or predictions")
    return out, names if len(names) == 2 else sorted({*names, str(pos)})


def _score_metric(name: str, merged: dict, s: pm.Settings) -> MetricValue:
    sc = merged.get("scores")
    if sc is None:  # no partition had a row
        return pm._empty(name, s, "no rows with both a label and a score")
    n1, n0 = float(sc["pos"].sum()), float(sc["neg"].sum())
    n = int(n1 + n0)
    if n == 0:
        return pm._empty(name, s, "no rows with both a label and a score")
    if name == "log_loss":
        if merged["outside"]:
            why = "undefined: scores outside [0, 1] are not probabilities"
            return MetricValue(name, np.nan, np.nan, np.nan, n, "none", s.confidence, why)
        boot = merged["boot_loss"]
        return bootstrap.metric(name, merged["loss"] / n, n, ci._ratio(boot[:, 1], boot[:, 0]), s.confidence)
    if n1 == 0 or n0 == 0:
        why = "undefined: only one class in y_true for this window"
        return MetricValue(name, np.nan, np.nan, np.nan, n, "none", s.confidence, why)
    auc, lower, upper, bound = auc_from_counts(sc["pos"], sc["neg"], s.confidence)
    note: str | None = None
    if sc["grid"]:
        note = (
            f"scores binned to a 2^-20 grid (more than {EXACT_SCORES} distinct in a partition): |error| <= {bound:.3g}"
        )
    if s.auc_interval == "bootstrap":  # the interval comes from a second pass (`performance`)
        return MetricValue(name, auc, np.nan, np.nan, n, "bootstrap", s.confidence, note)
    return MetricValue(name, auc, lower, upper, n, "delong", s.confidence, note)


def auc_from_counts(pos: np.ndarray, neg: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """ROC AUC, DeLong interval and grid error bound from counts of positives/negatives per sorted score.

    A positive at score v has placement V10 = (negatives below v + ½ negatives at v) / n0, a
    negative V01 = (positives above v + ½ positives at v) / n1: the same midrank quantities as
    `intervals.delong_interval`, grouped by score. The bound ½ Σ pos_c neg_c / (n1 n0) covers the
    pairs that share a cell, whose true order the grid no longer knows.
    """
    n1, n0 = pos.sum(), neg.sum()
    v10 = (np.cumsum(neg) - neg + 0.5 * neg) / n0
    v01 = (n1 - np.cumsum(pos) + 0.5 * pos) / n1
    auc = float((pos * v10).sum() / n1)
    bound = float(0.5 * (pos * neg).sum() / (n1 * n0))
    if n1 < 2 or n0 < 2:
        return auc, np.nan, np.nan, bound
    var = (pos * (v10 - auc) ** 2).sum() / (n1 - 1) / n1 + (neg * (v01 - auc) ** 2).sum() / (n0 - 1) / n0
    half = ci.z_value(confidence) * np.sqrt(var)
    return auc, float(max(0.0, auc - half)), float(min(1.0, auc + half)), bound


def _class_names(seen: set[str], classes: Sequence[Any] | None) -> list[str]:
    if classes is None:
        return sort_classes(list(seen))
    names = [canonical(c) for c in classes]
    if any(c is None for c in names):
        raise InvalidParameterError(f"classes: a class cannot be None or NaN, got {list(classes)!r}")
    outside = sorted(seen - set(names))
    if outside:
        raise DataError(f"y_true/y_pred: values {outside} are not in classes {names}")
    return names  # type: ignore[return-value]


def _multiclass(
    pairs: dict, wanted: list[str], classes: Sequence[Any] | None, s: pm.Settings
) -> tuple[dict[str, MetricValue], list[str]]:
    seen = {v for key in pairs for v in key if v is not None}
    if classes is None:
        names = sort_classes(list(seen))
    else:
        names = [canonical(c) for c in classes]  # type: ignore[misc]
        if any(c is None for c in names):
            raise InvalidParameterError(f"classes: a class cannot be None or NaN, got {list(classes)!r}")
        outside = sorted(seen - set(names))
        if outside:
            raise DataError(f"y_true/y_pred: values {outside} are not in classes {names}")
    index = {c: i for i, c in enumerate(names)}
    k = len(names)
    cm = np.zeros((k, k))
    for (t, p), count in pairs.items():
        if t is not None and p is not None:
            cm[index[t], index[p]] += count
    out = {}
    stats = {"precision": ci.macro_precision, "recall": ci.macro_recall, "f1": ci.macro_f1}
    for name in wanted:
        if name in pm.SCORE_METRICS:
            out[name] = pm._empty(name, s, "needs scores (y_score)")
        elif name == "accuracy":
            out[name] = pm._proportion(name, int(np.trace(cm)), int(cm.sum()), s, "rows")
        else:
            out[name] = pm._boot_counts(name, stats[name], cm, s, "undefined: no class has a defined value")
    return out, names


def _regression_metric(name: str, r: dict, s: pm.Settings) -> MetricValue:
    n = r["n"]
    if n == 0:
        return pm._empty(name, s, "no rows with the values this metric needs")
    if name == "r2":
        if r["max"] == r["min"]:
            return MetricValue(name, np.nan, np.nan, np.nan, n, "none", s.confidence, pm._CONSTANT_TRUTH)
        value = 1.0 - r["sq"] / r["m2"]
    else:
        value = {"mae": r["abs"] / n, "mse": r["sq"] / n, "rmse": float(np.sqrt(r["sq"] / n)), "mape": r["ape"] / n}[
            name
        ]
    return bootstrap.metric(name, float(value), n, bootstrap.regression_replicates(name, r["boot"]), s.confidence)
