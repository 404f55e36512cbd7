"""Compute each performance metric with its interval, on already-encoded arrays.

Binary: boolean truth `t`, boolean prediction `p`, positive-class score `s`.
Multiclass: integer class codes `t`, `p`, score matrix `s` (n, k). Regression: floats.
Interval methods: Wilson for proportions (accuracy, precision, recall); DeLong for binary
ROC AUC (bootstrap if asked); percentile bootstrap for everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aisre.errors import InvalidParameterError
from aisre.monitor.performance import intervals as ci
from aisre.monitor.performance.intervals import MetricValue

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "mse", "rmse", "mape", "r2")
# Direction of "worse": a threshold on these is a floor; on the others, a ceiling.
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
SCORE_METRICS = frozenset({"roc_auc", "log_loss"})
_EPS = np.finfo(np.float64).eps
_CONSTANT_TRUTH = "undefined: y_true is constant in this window (R² divides by its variance)"


@dataclass(frozen=True, slots=True)
class Settings:
    confidence: float = 0.95
    n_bootstrap: int = 1000
    seed: int | None = 0
    auc_interval: str = "delong"


def _value(
    name: str, value: float, interval: tuple[float, float], n: int, method: str, s: Settings, note: str | None = None
) -> MetricValue:
    if np.isnan(value) and note is None:
        note = "undefined for this window"
    return MetricValue(name, float(value), interval[0], interval[1], n, method, s.confidence, note)


def _empty(name: str, s: Settings, note: str) -> MetricValue:
    return MetricValue(name, np.nan, np.nan, np.nan, 0, "none", s.confidence, note)


def _proportion(name: str, hits: int, trials: int, s: Settings, what: str) -> MetricValue:
    if trials == 0:
        return MetricValue(
            name, np.nan, np.nan, np.nan, 0, "wilson", s.confidence, f"undefined: no {what} in this window"
        )
    return _value(name, hits / trials, ci.wilson(hits, trials, s.confidence), trials, "wilson", s)


def _boot(
    name: str, stat: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...], s: Settings, note: str | None = None
) -> MetricValue:
    n = len(arrays[0])
    if n == 0:
        return _empty(name, s, note or "no rows with the values this metric needs")
    value = ci.point(stat, arrays)
    if np.isnan(value):
        return MetricValue(
            name, np.nan, np.nan, np.nan, n, "bootstrap", s.confidence, note or "undefined for this window"
        )
    lower, upper, _ = ci.bootstrap(stat, arrays, s.n_bootstrap, s.confidence, s.seed)
    return _value(name, value, (lower, upper), n, "bootstrap", s, note)


def _boot_counts(
    name: str, stat: Callable[[np.ndarray], np.ndarray], cm: np.ndarray, s: Settings, undefined: str
) -> MetricValue:
    n = int(cm.sum())
    if n == 0:
        return _empty(name, s, "no rows with both a label and a prediction")
    value = float(stat(cm))
    if np.isnan(value):
        return MetricValue(name, np.nan, np.nan, np.nan, n, "bootstrap", s.confidence, undefined)
    lower, upper, _ = ci.bootstrap_counts(stat, cm, s.n_bootstrap, s.confidence, s.seed)
    return _value(name, value, (lower, upper), n, "bootstrap", s)


# -- binary ----------------------------------------------------------------------------------
def binary(name: str, t: np.ndarray, p: np.ndarray | None, score: np.ndarray | None, s: Settings) -> MetricValue:
    """One binary metric; `t`/`p` booleans (rows with both known), `score` (t, s) pair rows."""
    if name in SCORE_METRICS:
        return _binary_score(name, t, score, s)
    if p is None:
        return _empty(name, s, "needs predictions (y_pred) or scores (y_score)")
    tp = int(np.count_nonzero(t & p))
    if name == "accuracy":
        return _proportion(name, int(np.count_nonzero(t == p)), len(t), s, "rows")
    if name == "precision":
        return _proportion(name, tp, int(np.count_nonzero(p)), s, "positive predictions")
    if name == "recall":
        return _proportion(name, tp, int(np.count_nonzero(t)), s, "positive labels")
    if name == "f1":
        cm = ci.confusion(t.astype(np.int64), p.astype(np.int64), 2)
        return _boot_counts(name, ci.f1_binary, cm, s, "undefined: no positive labels or predictions")
    raise InvalidParameterError(f"metrics: unknown binary metric {name!r}; expected one of {CLASSIFICATION_METRICS}")


def _binary_score(name: str, t: np.ndarray, score: np.ndarray | None, s: Settings) -> MetricValue:
    if score is None:
        return _empty(name, s, "needs scores (y_score)")
    if t.size == 0:
        return _empty(name, s, "no rows with both a label and a score")
    if name == "roc_auc":
        if t.all() or not t.any():
            return MetricValue(
                name,
                np.nan,
                np.nan,
                np.nan,
                t.size,
                "none",
                s.confidence,
                "undefined: only one class in y_true for this window",
            )
        if s.auc_interval == "bootstrap":
            return _boot(name, ci.auc_binary, (t, score), s)
        auc, lower, upper = ci.delong_interval(t, score, s.confidence)
        return _value(name, auc, (lower, upper), t.size, "delong", s)
    if name == "log_loss":
        if np.any((score < 0) | (score > 1)):
            return MetricValue(
                name,
                np.nan,
                np.nan,
                np.nan,
                t.size,
                "none",
                s.confidence,
                "undefined: scores outside [0, 1] are not probabilities",
            )
        # Clip each column as scikit-learn does: [1-p, p] -> clip(., eps, 1-eps).
        loss = np.where(t, -np.log(np.clip(score, _EPS, 1 - _EPS)), -np.log(np.clip(1.0 - score, _EPS, 1 - _EPS)))
        return _boot(name, ci.mean, (loss,), s)
    raise InvalidParameterError(f"metrics: unknown binary metric {name!r}; expected one of {CLASSIFICATION_METRICS}")


# -- multiclass ------------------------------------------------------------------------------
def multiclass(
    name: str,
    t: np.ndarray,
    p: np.ndarray | None,
    t_s: np.ndarray | None,
    score: np.ndarray | None,
    k: int,
    s: Settings,
) -> MetricValue:
    """One multiclass metric (macro averages); `t_s`/`score` are the rows with scores."""
    if name == "roc_auc":
        if score is None or t_s is None:
            return _empty(name, s, "needs scores (y_score)")
        missing = sorted(set(range(k)) - set(np.unique(t_s).tolist()))
        note = f"one-vs-rest AUC undefined for class index(es) {missing}: absent in y_true" if missing else None
        return _boot(name, ci.auc_ovr_macro, (t_s, score), s, note)
    if name == "log_loss":
        if score is None or t_s is None:
            return _empty(name, s, "needs scores (y_score)")
        picked = score[np.arange(len(t_s)), t_s]
        return _boot(name, ci.mean, (-np.log(np.clip(picked, _EPS, 1 - _EPS)),), s)
    if p is None:
        return _empty(name, s, "needs predictions (y_pred) or scores (y_score)")
    if name == "accuracy":
        return _proportion(name, int(np.count_nonzero(t == p)), len(t), s, "rows")
    stat = {"precision": ci.macro_precision, "recall": ci.macro_recall, "f1": ci.macro_f1}.get(name)
    if stat is None:
        raise InvalidParameterError(
            f"metrics: unknown multiclass metric {name!r}; expected one of {CLASSIFICATION_METRICS}"
        )
    return _boot_counts(name, stat, ci.confusion(t, p, k), s, "undefined: no class has a defined value")


# -- regression ------------------------------------------------------------------------------
def regression(name: str, y: np.ndarray, yhat: np.ndarray, s: Settings) -> MetricValue:
    """MAE, MSE, RMSE, MAPE (as a fraction, |e| / max(|y|, eps), as scikit-learn) or R².

    R² = 1 - sum (y - ŷ)² / sum (y - mean y)² is NaN when y is constant (or n < 2): scikit-learn's
    default (`force_finite=True`) reports 1.0 or 0.0 there, which would judge a window on nothing.
    """
    err = yhat - y
    if name == "mae":
        return _boot(name, ci.mean, (np.abs(err),), s)
    if name == "mse":
        return _boot(name, ci.mean, (err * err,), s)
    if name == "r2":
        return _boot(name, ci.r2, (y, yhat), s, _CONSTANT_TRUTH if len(y) and np.ptp(y) == 0 else None)
    if name == "rmse":
        return _boot(name, ci.root_mean, (err * err,), s)
    if name == "mape":
        return _boot(name, ci.mean, (np.abs(err) / np.maximum(np.abs(y), _EPS),), s)
    raise InvalidParameterError(f"metrics: unknown regression metric {name!r}; expected one of {REGRESSION_METRICS}")
