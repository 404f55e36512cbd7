"""Group fairness of a binary classifier: per-group rates, parity gaps, the four-fifths rule.

    report = fairness(y_true, y_pred, sensitive=tags_sex)
    report.demographic_parity_difference, report.table(), report.breaches

Numbers equal Fairlearn's (`demographic_parity_difference`, `demographic_parity_ratio`,
`equal_opportunity_difference`, `equalized_odds_difference`, `MetricFrame` with
`selection_rate`, `true_positive_rate`, `false_positive_rate`, precision) with one
documented difference: a rate with a zero denominator (TPR of a group with no positives,
FPR with no negatives, precision with no positive predictions) is NaN here, and NaN
groups are left out of the gaps. Fairlearn (through scikit-learn) reports 0 for such a
rate, which makes a gap look large; `undefined_rate="zero"` reproduces that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.tabular.classes import MISSING, as_array, canonical, encode, factorize, sort_classes
from aisre.monitor.tabular.frame import to_columns
from aisre.monitor.tabular.labeled import LabeledWindow, as_labeled_window
from aisre.monitor.tabular.windows import OverTime, over_time
from aisre.records import Signal

SUMMARY = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "disparate_impact_ratio",
)
# Ratios are floors (breached below the threshold); differences are ceilings (breached above).
_RATIOS = frozenset({"demographic_parity_ratio", "disparate_impact_ratio"})
FOUR_FIFTHS = 0.8


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """Rates of one group; `n_positive`/`n_negative` count labeled rows by their truth."""

    group: str
    count: int
    selection_rate: float
    true_positive_rate: float
    false_positive_rate: float
    precision: float
    n_positive: int
    n_negative: int


@dataclass(frozen=True)
class FairnessReport:
    """Per-group table and the summary gaps of one sample (see module docstring)."""

    sensitive_feature: str
    groups: dict[str, GroupMetrics]
    overall: GroupMetrics
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equal_opportunity_difference: float
    equalized_odds_difference: float
    disparate_impact_ratio: float
    thresholds: dict[str, float] = field(default_factory=dict)
    method: str = "between_groups"
    notes: list[str] = field(default_factory=list)

    @property
    def four_fifths_rule_violated(self) -> bool:
        """True when the lowest group selection rate is under 80 % of the highest."""
        return bool(self.disparate_impact_ratio < FOUR_FIFTHS)

    def summary(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SUMMARY}

    @property
    def breaches(self) -> dict[str, bool]:
        out = {}
        for name, limit in self.thresholds.items():
            value = getattr(self, name)
            out[name] = (not np.isnan(value)) and bool(value < limit if name in _RATIOS else value > limit)
        return out

    def table(self) -> list[dict[str, Any]]:
        """One dict per group, in group order."""
        return [asdict(g) for g in self.groups.values()]

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.table()).set_index("group")

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.summary())
        out["four_fifths_rule_violated"] = self.four_fifths_rule_violated
        out.update({f"{k}_breached": v for k, v in self.breaches.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitive_feature": self.sensitive_feature,
            "method": self.method,
            "summary": self.summary(),
            "four_fifths_rule_violated": self.four_fifths_rule_violated,
            "groups": self.table(),
            "overall": asdict(self.overall),
            "thresholds": dict(self.thresholds),
            "breaches": self.breaches,
            "notes": list(self.notes),
        }

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """Summary gaps (labels: sensitive_feature) and per-group rates (labels: + group)."""
        breaches = self.breaches
        feature = {"sensitive_feature": self.sensitive_feature}
        out = [
            Signal(
                model,
                version,
                name,
                float(getattr(self, name)),
                self.thresholds.get(name),
                breaches.get(name, False),
                {**feature, "metric": name},
                window_start,
                window_end,
            )
            for name in SUMMARY
        ]
        for g in self.groups.values():
            for name in ("selection_rate", "true_positive_rate", "false_positive_rate"):
                out.append(
                    Signal(
                        model,
                        version,
                        name,
                        float(getattr(g, name)),
                        None,
                        False,
                        {**feature, "group": g.group},
                        window_start,
                        window_end,
                    )
                )
        return out


def fairness(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    pos_label: Any = 1,
    method: Literal["between_groups", "to_overall"] = "between_groups",
    thresholds: Mapping[str, float] | None = None,
    undefined_rate: Literal["nan", "zero"] = "nan",
    sensitive_name: str | None = None,
    data: Any = None,
) -> FairnessReport:
    """Per-group rates and parity gaps of binary predictions across sensitive groups.

    `sensitive` is one value per row (strings, numbers; None = missing, row dropped) or a
    table / mapping of several columns (groups are their intersections, named
    "a=x, b=y"). `y_true` may be None: then only selection rates and demographic parity
    are computed. Rows with a missing prediction are dropped; rows with a missing label
    count for selection rate only. `thresholds` default to the four-fifths rule
    ({"disparate_impact_ratio": 0.8}); differences breach above their threshold, ratios
    below it. `method` is Fairlearn's: "between_groups" (max - min, min / max) or
    "to_overall" (largest gap / smallest ratio of a group to the overall value);
    `disparate_impact_ratio` is always min / max selection rate (the four-fifths rule).

    `data`: a Spark or Dask DataFrame (or a local table); then `y_true` (or None), `y_pred` and
    `sensitive` (one name or several) are its column names, e.g.
    `fairness("label", "prediction", "sex", data=frame)`; per-partition counts, merged.
    """
    if method not in ("between_groups", "to_overall"):
        raise InvalidParameterError(f"method: expected 'between_groups' or 'to_overall', got {method!r}")
    if undefined_rate not in ("nan", "zero"):
        raise InvalidParameterError(f"undefined_rate: expected 'nan' or 'zero', got {undefined_rate!r}")
    limits = {"disparate_impact_ratio": FOUR_FIFTHS} if thresholds is None else dict(thresholds)
    bad = [k for k in limits if k not in SUMMARY]
    if bad:
        raise InvalidParameterError(f"thresholds: unknown metric(s) {bad}; expected some of {list(SUMMARY)}")
    if data is not None:
        return _on_frame(data, y_true, y_pred, sensitive, pos_label, method, limits, undefined_rate, sensitive_name)
    from aisre.monitor.performance.realised import _not_a_frame

    _not_a_frame(y_pred, "y_pred", "fairness")
    pred = as_array(y_pred, "y_pred")
    group_names, group_codes, feature = _groups(sensitive, len(pred), sensitive_name)
    truth = None if y_true is None else as_array(y_true, "y_true")
    if truth is not None and len(truth) != len(pred):
        raise DataError(f"y_true: expected {len(pred)} values (one per y_pred), got {len(truth)}")
    t, t_known, p, p_known = _binary(truth, pred, pos_label)
    notes = []
    keep = p_known & (group_codes != MISSING)
    if (dropped := int(np.count_nonzero(group_codes == MISSING))) > 0:
        notes.append(f"{dropped} row(s) without a {feature!r} value were left out")
    k = len(group_names)
    g, t, t_known, p = group_codes[keep], t[keep], t_known[keep], p[keep]
    zero = undefined_rate == "zero"
    per_group = _rates(g, t, t_known, p, k, zero)
    overall = _rates(np.zeros(len(g), dtype=np.int64), t, t_known, p, 1, zero)
    groups = {name: GroupMetrics(name, *(col[i] for col in per_group)) for i, name in enumerate(group_names)}
    sel, tpr, fpr = per_group[1], per_group[2], per_group[3]
    o_sel, o_tpr, o_fpr = overall[1][0], overall[2][0], overall[3][0]
    if truth is not None and np.isnan(tpr).any():
        notes.append("true_positive_rate is NaN for group(s) with no positive labels: left out of the gaps")
    eo = _nanmax([_difference(tpr, o_tpr, method), _difference(fpr, o_fpr, method)])
    return FairnessReport(
        feature,
        groups,
        GroupMetrics("overall", *(col[0] for col in overall)),
        _difference(sel, o_sel, method),
        _ratio(sel, o_sel, method),
        _difference(tpr, o_tpr, method) if truth is not None else np.nan,
        eo if truth is not None else np.nan,
        _ratio(sel, o_sel, "between_groups"),
        limits,
        method,
        notes,
    )


def _on_frame(
    data: Any,
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    pos_label: Any,
    method: Any,
    limits: dict[str, float],
    undefined_rate: Any,
    sensitive_name: str | None,
) -> FairnessReport:
    """The same report from per-partition counts of (group, label, prediction) (`monitor.engines.fairness`)."""
    import dataclasses

    from aisre.monitor.engines.common import engine_for
    from aisre.monitor.engines.fairness import fairness as on_frame
    from aisre.monitor.engines.performance import check_column

    available = engine_for(data).columns(data)
    if y_true is not None:
        check_column(available, "y_true", y_true)
    check_column(available, "y_pred", y_pred)
    features = [sensitive] if isinstance(sensitive, str) else sensitive
    if not isinstance(features, list | tuple) or not features:
        raise InvalidParameterError(f"sensitive: expected a column name or a list of them, got {sensitive!r}")
    for name in features:
        check_column(available, "sensitive", name)
    report = on_frame(
        data,
        y_pred,
        list(features),
        y_true,
        pos_label=pos_label,
        method=method,
        thresholds=limits,
        undefined_rate=undefined_rate,
    )
    return dataclasses.replace(report, sensitive_feature=sensitive_name) if sensitive_name else report


def _groups(sensitive: Any, n: int, name: str | None) -> tuple[list[str], np.ndarray, str]:
    if sensitive is None:
        raise DataError("sensitive: expected one sensitive-feature value per row, got None")
    is_table = isinstance(sensitive, Mapping) or hasattr(sensitive, "columns")
    if is_table or (isinstance(sensitive, np.ndarray) and sensitive.ndim == 2):
        cols = to_columns(sensitive)
        if not cols:
            raise DataError("sensitive: the table has no columns")
        texts = []
        for col_name, values in cols.items():
            uniq, inverse = factorize(values)
            if len(values) != n:
                raise DataError(f"sensitive: column {col_name!r} has {len(values)} values, expected {n}")
            texts.append(np.array([None if u is None else f"{col_name}={u}" for u in uniq], dtype=object)[inverse])
        stacked = np.stack(texts, axis=1) if texts[0].size else np.empty((0, len(texts)), dtype=object)
        joined = np.array(
            [None if any(v is None for v in row) else ", ".join(row) for row in stacked.tolist()],
            dtype=object,
        )
        feature = name or ",".join(cols)
        values = joined
    else:
        values = as_array(sensitive, "sensitive")
        feature = name or str(getattr(sensitive, "name", None) or "sensitive")
        if len(values) != n:
            raise DataError(f"sensitive: expected {n} values (one per y_pred), got {len(values)}")
    uniq, inverse = factorize(values)
    names = sort_classes([u for u in uniq if u is not None])
    index = {u: i for i, u in enumerate(names)}
    lookup = np.array([MISSING if u is None else index[u] for u in uniq], dtype=np.int64)
    return names, (lookup[inverse] if len(uniq) else np.empty(0, dtype=np.int64)), feature


def _binary(
    truth: np.ndarray | None, pred: np.ndarray, pos_label: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pos = canonical(pos_label)
    arrays = [pred] if truth is None else [pred, truth]
    codes, names = encode(arrays)
    if len(set(names) - {pos}) > 1:
        raise DataError(f"y_true/y_pred: fairness metrics need binary labels (positive {pos!r}), got {names}")
    p_idx = names.index(pos) if pos in names else -2
    p, p_known = codes[0] == p_idx, codes[0] != MISSING
    if truth is None:
        return np.zeros(len(pred), bool), np.zeros(len(pred), bool), p, p_known
    return codes[1] == p_idx, codes[1] != MISSING, p, p_known


def _rates(g: np.ndarray, t: np.ndarray, t_known: np.ndarray, p: np.ndarray, k: int, zero: bool) -> tuple[list, ...]:
    count = np.bincount(g, minlength=k)
    selected = np.bincount(g, weights=p, minlength=k)
    gl, tl, pl = g[t_known], t[t_known], p[t_known]
    pos = np.bincount(gl, weights=tl, minlength=k)
    neg = np.bincount(gl, weights=~tl, minlength=k)
    tp = np.bincount(gl, weights=tl & pl, minlength=k)
    fp = np.bincount(gl, weights=~tl & pl, minlength=k)
    fill = 0.0 if zero else np.nan

    def rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.full(k, fill)
        np.divide(num, den, out=out, where=den > 0)
        return out

    return (
        count.tolist(),
        rate(selected, count).tolist(),
        rate(tp, pos).tolist(),
        rate(fp, neg).tolist(),
        rate(tp, tp + fp).tolist(),
        pos.astype(int).tolist(),
        neg.astype(int).tolist(),
    )


def _nanmax(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return max(finite) if finite else np.nan


def _difference(values: Sequence[float], overall: float, method: str) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.nan
    if method == "between_groups":
        return float(v.max() - v.min())
    return float(np.max(np.abs(v - overall)))


def _ratio(values: Sequence[float], overall: float, method: str) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            return float(v.min() / v.max()) if v.max() > 0 else np.nan
        r = v / overall
        r = np.where(r > 1, 1.0 / r, r)
    r = r[~np.isnan(r)]
    return float(r.min()) if r.size else np.nan


def fairness_over_time(
    records_with_labels: Any,
    sensitive: str | Sequence[str],
    window: str | float = "1h",
    *,
    start: float | None = None,
    end: float | None = None,
    **options: Any,
) -> OverTime:
    """`fairness(...)` per time window: one row per window, a breach flag per thresholded gap.

    `records_with_labels`: (record, label) pairs from `Store.labeled_records` (`sensitive`
    names record tags, e.g. "sex"), a `LabeledWindow`, or a table with columns ts, y_true,
    y_pred and the `sensitive` column(s). `options` go to `fairness` (thresholds, method...).
    """
    names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    data = as_labeled_window(records_with_labels, tags=names)
    options.setdefault("sensitive_name", ",".join(names))

    def report(part: LabeledWindow) -> FairnessReport:
        has_truth = any(v is not None for v in part.y_true.tolist())
        return fairness(part.y_true if has_truth else None, part.y_pred, part.sensitive(sensitive), **options)

    return over_time(data, window, report, start, end)
