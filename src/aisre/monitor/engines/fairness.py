"""Group fairness of a Spark or Dask DataFrame: counts per (group, label, prediction) merged on the driver.

Every number of `aisre.fairness` is a ratio of counts per group (rows, selected, positives,
negatives, true and false positives), so each partition counts the distinct (group, label,
prediction) triples it holds, the driver adds the counts and builds the same `FairnessReport`
with `aisre.monitor.fairness.groups`' own rate, gap and ratio rules: equal to the one-process
report on the same rows. Boolean columns arrive from Arrow as "True"/"False" text and are
read as 1/0, as `aisre.fairness` reads numpy booleans.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.engines.common import Codec, check_columns, engine_for
from aisre.monitor.fairness import groups as fair
from aisre.monitor.tabular.classes import canonical, factorize, sort_classes
from aisre.monitor.tabular.frame import Columns

Key = tuple[str | None, str | None, str | None]  # (group, label, prediction) as canonical text


def _text(values: np.ndarray) -> np.ndarray:
    """Canonical text per row (None = missing); Arrow booleans ("True"/"False") as "1"/"0"."""
    names, inverse = factorize(values)
    names = [{"True": "1", "False": "0"}.get(n, n) if n is not None else None for n in names]
    return np.array(names + [None], dtype=object)[inverse] if len(values) else np.empty(0, dtype=object)


def _count(columns: Columns, y_true: str | None, y_pred: str, sensitive: tuple[str, ...]) -> dict[Key, int]:
    n = len(columns[y_pred])
    if len(sensitive) == 1:
        group = _text(columns[sensitive[0]])
    else:  # intersections named "a=x, b=y", as aisre.fairness names them
        parts = [[None if v is None else f"{name}={v}" for v in _text(columns[name])] for name in sensitive]
        group = np.array([None if None in row else ", ".join(row) for row in zip(*parts, strict=True)], dtype=object)
    truth = _text(columns[y_true]) if y_true is not None else np.full(n, None, dtype=object)
    pred = _text(columns[y_pred])
    out: dict[Key, int] = {}
    for key in zip(group.tolist(), truth.tolist(), pred.tolist(), strict=True):
        out[key] = out.get(key, 0) + 1
    return out


def _merge(a: dict[Key, int], b: dict[Key, int]) -> dict[Key, int]:
    out = dict(a)
    for key, n in b.items():
        out[key] = out.get(key, 0) + n
    return out


COUNTS = Codec(_merge, pickle.dumps, pickle.loads)


def fairness(
    frame: Any,
    y_pred: str,
    sensitive: str | Sequence[str],
    y_true: str | None = None,
    *,
    pos_label: Any = 1,
    method: Literal["between_groups", "to_overall"] = "between_groups",
    thresholds: Mapping[str, float] | None = None,
    undefined_rate: Literal["nan", "zero"] = "nan",
) -> fair.FairnessReport:
    """`aisre.fairness` over the columns of a Spark, Dask (or local) frame, named by `y_pred`, `y_true`, `sensitive`."""
    if method not in ("between_groups", "to_overall"):
        raise InvalidParameterError(f"method: expected 'between_groups' or 'to_overall', got {method!r}")
    if undefined_rate not in ("nan", "zero"):
        raise InvalidParameterError(f"undefined_rate: expected 'nan' or 'zero', got {undefined_rate!r}")
    limits = {"disparate_impact_ratio": fair.FOUR_FIFTHS} if thresholds is None else dict(thresholds)
    bad = [k for k in limits if k not in fair.SUMMARY]
    if bad:
        raise InvalidParameterError(f"thresholds: unknown metric(s) {bad}; expected some of {list(fair.SUMMARY)}")
    features = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    engine = engine_for(frame)
    names = [y_pred, *([y_true] if y_true else []), *features]
    check_columns(engine.columns(frame), names, "fairness")
    fn = functools.partial(_count, y_true=y_true, y_pred=y_pred, sensitive=features)
    empty: dict[Key, int] = {}
    counts = functools.reduce(_merge, engine.map_partitions(frame, list(dict.fromkeys(names)), fn, COUNTS), empty)
    return _report(counts, ",".join(features), y_true is not None, canonical(pos_label), method, limits, undefined_rate)


def _report(
    counts: dict[Key, int], feature: str, labelled: bool, pos: str | None, method: str, limits: dict, undefined: str
) -> fair.FairnessReport:
    labels = {v for _, t, p in counts for v in (t, p) if v is not None}
    if len(labels - {pos}) > 1:
        raise DataError(f"y_true/y_pred: fairness metrics need binary labels (positive {pos!r}), got {sorted(labels)}")
    group_names = sort_classes([g for g, _, _ in counts if g is not None])
    group_names = list(dict.fromkeys(group_names))
    index = {g: i for i, g in enumerate(group_names)}
    k = len(group_names)
    tallies = np.zeros((6, k))  # count, selected, positives, negatives, tp, fp
    overall = np.zeros(6)
    dropped = 0
    for (g, t, p), n in counts.items():
        if g is None:
            dropped += n
        if g is None or p is None:
            continue
        row = np.array([1, p == pos, t is not None and t == pos, t is not None and t != pos, 0, 0], dtype=float)
        row[4], row[5] = row[2] * (p == pos), row[3] * (p == pos)
        tallies[:, index[g]] += n * row
        overall += n * row
    fill = 0.0 if undefined == "zero" else np.nan

    def rates(c: np.ndarray) -> tuple[list, ...]:
        def rate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
            out = np.full(len(num), fill)
            np.divide(num, den, out=out, where=den > 0)
            return out

        count, sel, pos_n, neg_n, tp, fp = c
        return (
            count.astype(int).tolist(),
            rate(sel, count).tolist(),
            rate(tp, pos_n).tolist(),
            rate(fp, neg_n).tolist(),
            rate(tp, tp + fp).tolist(),
            pos_n.astype(int).tolist(),
            neg_n.astype(int).tolist(),
        )

    per_group, whole = rates(tallies), rates(overall[:, None])
    notes = [f"{dropped} row(s) without a {feature!r} value were left out"] if dropped else []
    groups = {name: fair.GroupMetrics(name, *(col[i] for col in per_group)) for i, name in enumerate(group_names)}
    sel, tpr, fpr = per_group[1], per_group[2], per_group[3]
    o_sel, o_tpr, o_fpr = whole[1][0], whole[2][0], whole[3][0]
    if labelled and np.isnan(tpr).any():
        notes.append("true_positive_rate is NaN for group(s) with no positive labels: left out of the gaps")
    eo = fair._nanmax([fair._difference(tpr, o_tpr, method), fair._difference(fpr, o_fpr, method)])
    return fair.FairnessReport(
        feature,
        groups,
        fair.GroupMetrics("overall", *(col[0] for col in whole)),
        fair._difference(sel, o_sel, method),
        fair._ratio(sel, o_sel, method),
        fair._difference(tpr, o_tpr, method) if labelled else np.nan,
        eo if labelled else np.nan,
        fair._ratio(sel, o_sel, "between_groups"),
        limits,
        method,
        notes,
    )
