"""Feature importance monitoring: importances per window, ranking shifts, and the impact of drift.

    ref = window_importance(model, X_ref, y_ref)          # permutation importance (labels)
    cur = window_importance(model, X_cur)                 # model's own importances (no labels)
    shift = compare_importance(ref, cur)                  # Spearman / Kendall / share jumps
    impact = drift_impact(ref, drift_report)              # which drifted features matter

Importances are permutation importances (exactly `sklearn.inspection.permutation_importance`:
the decrease of a score when one column is shuffled, `n_repeats` times, seeded) when labels
exist, else the model's `feature_importances_` or `|coef_|`. Definitions and the reasons for
the default thresholds: docs/statistics-importance-llm.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.monitor.frame import DataError, is_numeric, to_columns
from aisre.records import Label, Signal

MIN_SPEARMAN = 0.8
"""Alert below this Spearman rho; a top feature falling to mid-table gets there, a swap of
neighbours does not (10 features, one adjacent swap: rho = 0.988)."""
MIN_KENDALL = 0.6
"""Kendall's tau matching rho = 0.8 for a bivariate normal: tau = 2/pi asin(2 sin(pi rho/6))."""
MAX_SHARE_CHANGE = 0.10
"""Alert when a feature's share of total importance moves by more than 10 points (absolute)."""
DRIFT_IMPACT_THRESHOLD = 0.20
"""Alert when drifted features carry >= 20% of the reference importance."""

Scorer = Callable[[Any, Any, Any], float]


@dataclass(frozen=True, slots=True)
class FeatureImportance:
    """Importance of each feature over one window.

    `values` are mean importances: decrease of the score (score units) for `permutation`,
    the model's own numbers for `feature_importances_`, mean |coefficient| for `coef_`.
    `raw` is features x repeats for permutation importance, else None.
    """

    features: tuple[str, ...]
    values: np.ndarray
    method: str
    std: np.ndarray | None = None
    raw: np.ndarray | None = None
    baseline_score: float | None = None
    n_rows: int | None = None

    def as_dict(self) -> dict[str, float]:
        return {f: float(v) for f, v in zip(self.features, self.values, strict=True)}

    def shares(self) -> dict[str, float]:
        """Each feature's share of the total importance, in [0, 1].

        Negative permutation importances (shuffling helped: noise) count as 0. If nothing
        is important every share is 0.
        """
        clipped = np.clip(np.nan_to_num(self.values, nan=0.0), 0.0, None)
        total = float(clipped.sum())
        shares = clipped / total if total > 0 else np.zeros_like(clipped)
        return {f: float(s) for f, s in zip(self.features, shares, strict=True)}

    def ranked(self) -> list[tuple[str, float]]:
        """(feature, importance), most important first."""
        return sorted(self.as_dict().items(), key=lambda kv: -kv[1])

    def to_dict(self) -> dict[str, Any]:
        std = None if self.std is None else dict(zip(self.features, self.std.tolist(), strict=True))
        return {"method": self.method, "n_rows": self.n_rows, "baseline_score": self.baseline_score,
                "importances": self.as_dict(), "shares": self.shares(), "std": std}  # fmt: skip


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
    """Permutation importance with `sklearn.inspection.permutation_importance` semantics.

    Same seeding (one seed drawn from `random_state`, reused for every column, shuffles
    compounding over repeats), same default score (`estimator.score`), same result. `X` is a
    pandas DataFrame (shuffled with .iloc, as sklearn does), a numpy array, or any table
    `to_columns` accepts (converted to a float array; every column must be numeric).
    Cost: n_features x n_repeats predictions over the window; sample big windows first.
    """
    if not isinstance(n_repeats, int) or n_repeats < 1:
        raise ValueError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    X, names = _as_matrix(X, feature_names)
    y = np.asarray(y)
    if len(y) != X.shape[0]:
        raise DataError(f"y: expected {X.shape[0]} labels (one per row of X), got {len(y)}")
    score = _scorer(estimator, scoring)
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(
        random_state)  # fmt: skip
    seed = rng.randint(np.iinfo(np.int32).max + 1)
    baseline = float(score(estimator, X, y))
    frame = hasattr(X, "iloc")
    scores = np.empty((len(names), n_repeats))
    for col in range(len(names)):
        shuffler = np.random.RandomState(seed)
        permuted = X.copy()
        order = np.arange(X.shape[0])
        for repeat in range(n_repeats):
            shuffler.shuffle(order)
            if frame:
                values = permuted.iloc[order, col]
                values.index = permuted.index
                permuted[permuted.columns[col]] = values
            else:
                permuted[:, col] = permuted[order, col]
            scores[col, repeat] = score(estimator, permuted, y)
    raw = baseline - scores
    return FeatureImportance(tuple(names), raw.mean(axis=1), "permutation", raw.std(axis=1), raw,
                             baseline, int(X.shape[0]))  # fmt: skip


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


def window_importance(
    estimator: Any, X: Any = None, y: Any = None, **permutation: Any
) -> FeatureImportance:
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


# -- rank correlations ------------------------------------------------------------------------
def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of average ranks (scipy.stats.spearmanr); NaN if a
    side is constant or has fewer than 2 values."""
    x, y = _pair(a, b)
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator > 0 else math.nan


def kendall_tau(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (ties corrected, as scipy.stats.kendalltau); NaN if a side is constant.

    tau_b = (concordant - discordant) / sqrt(pairs untied in a * pairs untied in b), over all
    pairs; O(n^2) in features, computed a block of rows at a time.
    """
    x, y = _pair(a, b)
    s = untied_x = untied_y = 0.0
    for start in range(0, len(x), 512):
        dx = np.sign(x[start : start + 512, None] - x[None, :])
        dy = np.sign(y[start : start + 512, None] - y[None, :])
        s += float((dx * dy).sum())
        untied_x += float(np.abs(dx).sum())
        untied_y += float(np.abs(dy).sum())
    # every unordered pair was counted twice, in both orders; the ratio is unaffected
    denominator = math.sqrt(untied_x * untied_y)
    return s / denominator if denominator > 0 else math.nan


# -- ranking shifts ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportanceShift:
    """How the importance ranking moved from a reference window to a current one."""

    spearman: float
    kendall: float
    reference_shares: dict[str, float]
    current_shares: dict[str, float]
    min_spearman: float = MIN_SPEARMAN
    min_kendall: float = MIN_KENDALL
    max_share_change: float = MAX_SHARE_CHANGE

    @property
    def share_changes(self) -> dict[str, float]:
        """Current minus reference share, per feature (absolute points in [-1, 1])."""
        return {f: self.current_shares[f] - s for f, s in self.reference_shares.items()}

    @property
    def jumped(self) -> list[str]:
        """Features whose share moved by more than `max_share_change`, biggest move first."""
        moved = [(f, abs(c)) for f, c in self.share_changes.items() if abs(c) > self.max_share_change]
        return [f for f, _ in sorted(moved, key=lambda fc: -fc[1])]

    @property
    def rank_breached(self) -> dict[str, bool]:
        """NaN (a constant side: no ranking to compare) never breaches."""
        return {"spearman": bool(self.spearman < self.min_spearman),
                "kendall": bool(self.kendall < self.min_kendall)}  # fmt: skip

    @property
    def alert(self) -> bool:
        return any(self.rank_breached.values()) or bool(self.jumped)

    def signals(self, model: str, version: str, window_start: float | None = None,
                window_end: float | None = None) -> list[Signal]:  # fmt: skip
        """`feature_importance_rank_correlation` {method} and `feature_importance_share`
        {feature} (value: current share; breached when it moved by more than the threshold)."""
        common = {"model": model, "version": version, "window_start": window_start,
                  "window_end": window_end}  # fmt: skip
        out = [
            Signal(name="feature_importance_rank_correlation", value=value, threshold=threshold,
                   breached=self.rank_breached[method], labels={"method": method}, **common)
            for method, value, threshold in (("spearman", self.spearman, self.min_spearman),
                                             ("kendall", self.kendall, self.min_kendall))
        ]  # fmt: skip
        changes = self.share_changes
        out += [
            Signal(name="feature_importance_share", value=self.current_shares[f],
                   threshold=self.max_share_change, breached=abs(changes[f]) > self.max_share_change,
                   labels={"feature": f}, **common)
            for f in self.reference_shares
        ]  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "kendall": self.kendall, "alert": self.alert,
                "jumped": self.jumped, "reference_shares": self.reference_shares,
                "current_shares": self.current_shares, "share_changes": self.share_changes,
                "thresholds": {"min_spearman": self.min_spearman, "min_kendall": self.min_kendall,
                               "max_share_change": self.max_share_change}}  # fmt: skip


def compare_importance(
    reference: FeatureImportance | Mapping[str, float],
    current: FeatureImportance | Mapping[str, float],
    *,
    min_spearman: float = MIN_SPEARMAN,
    min_kendall: float = MIN_KENDALL,
    max_share_change: float = MAX_SHARE_CHANGE,
) -> ImportanceShift:
    """Rank correlations of the two importance vectors (aligned by feature name) and share
    changes. Both sides must name the same features."""
    for name, value in (("min_spearman", min_spearman), ("min_kendall", min_kendall)):
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a correlation in [-1, 1], got {value!r}")
    if not 0.0 <= max_share_change <= 1.0:
        raise ValueError(f"max_share_change: expected a share in [0, 1], got {max_share_change!r}")
    ref, cur = _importance(reference, "reference"), _importance(current, "current")
    if set(ref.features) != set(cur.features):
        raise DataError(
            f"current: features differ from the reference; only in reference: "
            f"{sorted(set(ref.features) - set(cur.features))}, only in current: "
            f"{sorted(set(cur.features) - set(ref.features))}"
        )
    ref_values, cur_values = ref.as_dict(), cur.as_dict()
    a = np.array([ref_values[f] for f in ref.features])
    b = np.array([cur_values[f] for f in ref.features])
    cur_shares = cur.shares()
    return ImportanceShift(spearman(a, b), kendall_tau(a, b), ref.shares(),
                           {f: cur_shares[f] for f in ref.features},
                           min_spearman, min_kendall, max_share_change)  # fmt: skip


# -- drift impact -----------------------------------------------------------------------------
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

    def signals(self, model: str, version: str, window_start: float | None = None,
                window_end: float | None = None) -> list[Signal]:  # fmt: skip
        return [Signal(model, version, "drift_impact", self.score, self.threshold, self.breached,
                       {}, window_start, window_end)]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "threshold": self.threshold, "breached": self.breached,
                "drifted": [{"feature": f, "share": s, "statistic": self.statistics.get(f)}
                            for f, s in self.drifted],
                "unranked": self.unranked}  # fmt: skip


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
        raise ValueError(f"threshold: expected a share in [0, 1], got {threshold!r}")
    shares = _importance(importance, "importance").shares()
    results = getattr(drift_results, "columns", drift_results)
    if not isinstance(results, Mapping):
        raise DataError(
            f"drift_results: expected a mapping of column -> drift result, got {type(results).__name__}"
        )
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


# -- helpers ----------------------------------------------------------------------------------
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


def _importance(value: FeatureImportance | Mapping[str, float], name: str) -> FeatureImportance:
    if isinstance(value, FeatureImportance):
        return value
    if isinstance(value, Mapping) and value:
        values = np.array([float(v) for v in value.values()])
        return FeatureImportance(tuple(str(k) for k in value), values, "given")
    raise DataError(f"{name}: expected a FeatureImportance or a non-empty mapping of feature -> importance")


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(x) != len(y):
        raise DataError(f"importances: expected two vectors of one length, got {len(x)} and {len(y)}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise DataError("importances: NaN values cannot be ranked")
    return x, y


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (scipy.stats.rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((first + last + 1) / 2.0)[group]
    return ranks


def _scorer(estimator: Any, scoring: str | Scorer | None) -> Scorer:
    if scoring is None:
        if not hasattr(estimator, "score"):
            raise ValueError(f"scoring: {type(estimator).__name__} has no score(); pass a scorer")
        return lambda est, X, y: est.score(X, y)
    if isinstance(scoring, str):
        from sklearn.metrics import get_scorer  # only when asked for a named sklearn scorer

        return get_scorer(scoring)
    if callable(scoring):
        return scoring
    raise ValueError(f"scoring: expected None, a scorer name or a callable, got {scoring!r}")


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
    names = tuple(str(f) for f in feature_names) if feature_names is not None else tuple(
        f"x{i}" for i in range(n))  # fmt: skip
    if len(names) != n:
        raise DataError(f"feature_names: expected {n} names, got {len(names)}")
    return names
