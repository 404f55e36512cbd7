"""`drift(reference, current)`: every column tested, corrected across columns, one dataset verdict."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.monitor.drift import infinite as inf
from aisre.monitor.drift import thresholds as rules
from aisre.monitor.drift.auto import auto_method
from aisre.monitor.drift.base import DriftResult
from aisre.monitor.drift.compat import MODES
from aisre.monitor.drift.correction import CORRECTIONS, adjust
from aisre.monitor.drift.registry import ALL_METHODS, MethodError, get_method
from aisre.monitor.drift.values import count_present
from aisre.monitor.tabular.frame import DataError, to_columns

#: Below this many values per column, threads cost more than they save.
PARALLEL_MIN_ROWS = 50_000
#: The per-column details that `to_dict()` (and so `--json`) carries.
_REPORTED = (
    "n_reference",
    "n_current",
    "missing_reference",
    "missing_current",
    "infinite_reference",
    "infinite_current",
    "infinite_share_p_value",
    "lower_threshold",
    "upper_threshold",
    "threshold_rule",
    "reference_chunks",
    "note",
)


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column results and the dataset verdict: `share_drifted >= share_threshold`.

    Each column's `details` count what the test did not see: `missing_reference`/`missing_current`
    (NaN/None) and `infinite_reference`/`infinite_current` (+-inf; `infinite` is the policy).
    """

    columns: dict[str, DriftResult]
    share_drifted: float
    dataset_drift: bool
    share_threshold: float = 0.5
    correction: str | None = None
    compat: str | None = None
    infinite: str = "flag"

    @property
    def n_drifted(self) -> int:
        return sum(r.drift for r in self.columns.values())

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, r in self.columns.items() if r.drift]

    def to_dict(self) -> dict[str, Any]:
        columns = {}
        for name, r in self.columns.items():
            entry: dict[str, Any] = {
                "method": r.method,
                "statistic": r.statistic,
                "p_value": r.p_value,
                "threshold": r.threshold,
                "drift": r.drift,
            }
            if "p_value_adjusted" in r.details:
                entry["p_value_adjusted"] = r.details["p_value_adjusted"]
            for key in _REPORTED:
                if key in r.details:
                    entry[key] = r.details[key]
            columns[name] = entry
        return {
            "columns": columns,
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
            "n_drifted": self.n_drifted,
            "share_threshold": self.share_threshold,
            "correction": self.correction,
            "compat": self.compat,
            "infinite": self.infinite,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as strict JSON: NaN becomes null, +-inf the strings "inf"/"-inf"."""
        from aisre.monitor.report.jsonsafe import dumps

        return dumps(self.to_dict(), indent=indent)

    def to_frame(self) -> Any:
        """One row per column (pandas, imported only here)."""
        import pandas as pd

        rows = [{"column": name, **entry} for name, entry in self.to_dict()["columns"].items()]
        return pd.DataFrame(rows).set_index("column")


def drift(
    reference: Any,
    current: Any,
    method: str | Mapping[str, str] = "auto",
    columns: Sequence[str] | None = None,
    threshold: float | str | rules.Threshold | Mapping[str, Any] | None = None,
    compat: str | None = None,
    correction: str | None = None,
    share_threshold: float = 0.5,
    progress: Callable[[str], None] | None = None,
    infinite: str = "flag",
    chunk_size: int | None = None,
    n_chunks: int | None = None,
) -> DatasetDrift:
    """Test every column of `current` against `reference` and decide whether the dataset drifted.

    `reference`/`current`: anything `aisre.monitor.tabular.frame.to_columns` accepts. `method`: a
    name from METHODS, "auto" (Evidently's choice per column), or {column: name} (others
    "auto"). `threshold`: one number for all columns, {column: number}, or None for each
    method's default. `compat`: None (aisre), "evidently" or "nannyml". `correction`: None,
    "bonferroni" or "bh", applied to the p-values of the columns tested with a p-value
    method. A column is "drifted" by its (corrected) verdict; the dataset drifts when the
    share of drifted columns is >= `share_threshold` (Evidently's drift_share, 0.5).
    `progress(column)` is called as each column finishes (for progress bars).
    `infinite`: what +-inf values do (see `aisre.monitor.drift.infinite`): "flag" (default;
    excluded from the test, counted, and a changed share of them is drift), "drop" (excluded
    and counted only) or "error" (refused with `DataError`).

    `threshold` may also be a rule for distance methods (see `aisre.monitor.drift.thresholds`):
    "std" (= `StdThreshold()`: alert when the statistic > mean + 3 std of the statistics of
    reference chunks, each scored against the whole reference, as NannyML's default) or a
    `StdThreshold(k, lower_k)` / `ConstantThreshold(lower, upper)`; these alert strictly
    outside their bounds. Reference chunks have `chunk_size` rows (default: the current
    window's row count) or there are `n_chunks` of them (NannyML's chunkers).

    Either side may be a Spark or Dask DataFrame: each partition is then profiled where it lives
    and the statistics come from the merged profiles (`aisre.monitor.engines`).
    """
    from aisre.monitor.engines.common import is_distributed  # type names only: no pyspark/dask import

    if is_distributed(reference) or is_distributed(current):  # profiled per partition (monitor/engines)
        from aisre.monitor.engines.drift import drift as distributed

        return distributed(
            reference, current, method, columns, threshold, compat, correction,
            share_threshold, progress, infinite, chunk_size, n_chunks,
        )  # fmt: skip
    _check_options(compat, correction, share_threshold)
    inf.check_policy(infinite)
    ref_cols = to_columns(reference, columns)
    cur_cols = to_columns(current, columns)
    names = list(ref_cols) if columns is None else list(columns)
    if ref_cols and not cur_cols:
        raise DataError("the current window is empty (no rows, no columns); nothing to compare")
    absent = [n for n in names if n not in cur_cols]
    if absent:
        raise DataError(f"columns {absent} are in the reference but not in the current data")
    if not names:
        raise DataError("no columns to compare: the reference has no columns")
    for role, cols in (("reference", ref_cols), ("current", cur_cols)):
        if len(cols[names[0]]) == 0:
            raise DataError(f"the {role} window is empty (0 rows); nothing to compare")
    methods = _per_column(method, names, "method", "auto")
    given = _per_column(threshold, names, "threshold", None)
    thresholds = {n: rules.parse(t, f"threshold for column {n!r}") for n, t in given.items()}
    slices = _reference_chunks(thresholds, chunk_size, n_chunks, len(ref_cols[names[0]]), len(cur_cols[names[0]]))

    def one(name: str) -> DriftResult:
        ref, cur, rule = ref_cols[name], cur_cols[name], thresholds[name]
        result = _column_drift(name, ref, cur, methods[name], rule, compat, infinite)
        if isinstance(rule, rules.Threshold):
            result = _with_rule(name, result, rule, ref, slices, compat)
        if progress is not None:
            progress(name)
        return result

    rows = len(ref_cols[names[0]]) + len(cur_cols[names[0]])
    workers = min(len(names), os.cpu_count() or 1, 4)
    if workers > 1 and rows >= PARALLEL_MIN_ROWS:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy sorts release the GIL
            results = dict(zip(names, pool.map(one, names), strict=True))
    else:
        results = {name: one(name) for name in names}
    if correction is not None:
        results = _corrected(results, correction)
    share = sum(r.drift for r in results.values()) / len(results)
    return DatasetDrift(results, share, bool(share >= share_threshold), share_threshold, correction, compat, infinite)


def _column_drift(
    name: str,
    ref: np.ndarray,
    cur: np.ndarray,
    method: str,
    threshold: float | rules.Threshold | None,
    compat: str | None,
    infinite: str,
) -> DriftResult:
    ref, cur = _same_kind(name, ref, cur)
    n_ref, n_cur = count_present(ref), count_present(cur)
    inf_ref, inf_cur = inf.count_infinite(ref), inf.count_infinite(cur)
    if infinite == "error" and (inf_ref or inf_cur):
        raise inf.refuse(name, "reference" if inf_ref else "current", inf_ref or inf_cur, len(ref if inf_ref else cur))
    if n_ref == 0:
        raise DataError(
            f"column {name!r}: the reference has no non-missing finite values ({len(ref)} rows: "
            f"{inf.count_missing(ref, inf_ref, 0)} missing, {inf_ref} infinite); "
            "there is nothing to compare against -- exclude it with columns=[...]"
        )
    chosen = auto_method(ref, cur, compat, n_ref) if method == "auto" else method
    tester = get_method(chosen, None if isinstance(threshold, rules.Threshold) else threshold, compat)
    if isinstance(threshold, rules.Threshold) and tester.uses_p_value:
        raise MethodError(
            f"threshold for column {name!r}: {threshold!r} bounds a distance, but method {chosen!r}"
            f"{' (chosen by auto)' if method == 'auto' else ''} decides by p-value; pass a number, or a "
            "distance method (jensenshannon, hellinger, wasserstein, psi, linfinity) with method=..."
        )
    if n_cur == 0:
        result = _all_missing_current(name, tester, ref, cur, n_ref, inf_ref, inf_cur)
    else:
        try:
            tester.fit(ref)
            result = tester.score(cur, column=name)
        except DataError as exc:
            raise DataError(f"column {name!r} (method {chosen!r}): {exc}") from exc
        if method == "auto":
            result.details["auto"] = True
    return inf.with_counts(result, infinite, inf_ref, n_ref + inf_ref, inf_cur, n_cur + inf_cur)


def _reference_chunks(
    thresholds: dict[str, Any], chunk_size: int | None, n_chunks: int | None, n_ref: int, n_cur: int
) -> list[slice] | None:
    """The reference's row chunks when some column's threshold needs them, else None."""
    for what, value in (("chunk_size", chunk_size), ("n_chunks", n_chunks)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1):
            raise MethodError(f"{what}: expected a whole number >= 1, got {value!r}")
    if chunk_size is not None and n_chunks is not None:
        raise MethodError("chunk_size and n_chunks: give one of them, not both")
    needed = any(isinstance(t, rules.Threshold) and t.needs_chunks for t in thresholds.values())
    if not needed:
        if chunk_size is not None or n_chunks is not None:
            raise MethodError(
                "chunk_size/n_chunks: only used by a threshold from the reference's variability "
                "(threshold='std' or StdThreshold(...)); this call has none"
            )
        return None
    return rules.chunk_slices(n_ref, n_cur if chunk_size is None and n_chunks is None else chunk_size, n_chunks)


def _with_rule(
    name: str,
    result: DriftResult,
    rule: rules.Threshold,
    ref: np.ndarray,
    slices: list[slice] | None,
    compat: str | None,
) -> DriftResult:
    """The verdict of `rule`: bounds from the reference chunks' statistics, clipped to the metric's range."""
    details = dict(result.details)
    tester = get_method(result.method, None, compat)
    chunk_stats = np.empty(0)
    try:
        if rule.needs_chunks and slices is not None:
            tester.fit(ref)
            chunk_stats = rules.chunk_statistics(lambda part: tester.score(part).statistic, ref, slices)
            details["reference_chunks"] = len(slices)
        lower, upper = rule.bounds(chunk_stats)
    except DataError as exc:
        raise DataError(f"column {name!r} (method {result.method!r}): {exc}") from exc
    lower, upper = rules.clip(lower, upper, getattr(tester, "value_range", (None, None)))
    details.update(lower_threshold=lower, upper_threshold=upper, threshold_rule=repr(rule))
    drift = result.drift  # a column whose current values are all missing stays drifted
    if result.statistic == result.statistic:
        drift = rule.is_alert(result.statistic, lower, upper) or bool(details.get("infinite_share_drift", False))
    upper_value = math.nan if upper is None else float(upper)
    return dataclasses.replace(result, threshold=upper_value, drift=bool(drift), details=details)


def _all_missing_current(
    name: str, tester: Any, ref: np.ndarray, cur: np.ndarray, n_ref: int, inf_ref: int, inf_cur: int
) -> DriftResult:
    """A column that stops arriving is the drift to hear about: drift=True, statistic NaN, a note."""
    missing_cur = inf.count_missing(cur, inf_cur, 0)
    what = "missing" if inf_cur == 0 else f"missing or infinite ({missing_cur} missing, {inf_cur} infinite)"
    details = {
        "n_reference": n_ref,
        "n_current": 0,
        "missing_reference": inf.count_missing(ref, inf_ref, n_ref),
        "missing_current": missing_cur,
        "note": f"all {len(cur)} current values are {what} (reference had {n_ref} values): "
        "reported as drift, no statistic",
    }
    return DriftResult(tester.name, math.nan, None, tester.threshold, True, name, details)


def _same_kind(name: str, ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numeric vs text must agree; a side with no values at all takes the other side's kind."""
    ref_numeric, cur_numeric = ref.dtype.kind == "f", cur.dtype.kind == "f"
    if ref_numeric == cur_numeric:
        return ref, cur
    if count_present(cur) == 0:
        return ref, np.full(len(cur), np.nan) if ref_numeric else np.full(len(cur), None, dtype=object)
    if count_present(ref) == 0:
        return (np.full(len(ref), np.nan) if cur_numeric else np.full(len(ref), None, dtype=object)), cur
    text = cur if ref_numeric else ref
    example = next(v for v in text if v is not None)
    raise DataError(
        f"column {name!r} is {'numeric' if ref_numeric else 'text'} in the reference but "
        f"{'text' if ref_numeric else 'numeric'} in the current data (e.g. {example!r}); "
        "make both the same type or exclude the column with columns=[...]"
    )


def _corrected(results: dict[str, DriftResult], correction: str) -> dict[str, DriftResult]:
    tested = [name for name, r in results.items() if r.p_value is not None]
    adjusted = adjust([results[n].p_value for n in tested], correction)  # type: ignore[misc]
    out = dict(results)
    for name, p_adj in zip(tested, adjusted, strict=True):
        r = results[name]
        details = {
            **r.details,
            "p_value_adjusted": float(p_adj),
            "correction": correction,
            "drift_uncorrected": r.drift,
        }
        # A changed share of infinite values is its own finding; the correction is for the tests' p-values.
        drift = bool(p_adj < r.threshold) or bool(details.get("infinite_share_drift", False))
        out[name] = dataclasses.replace(r, drift=drift, details=details)
    return out


def _per_column(value: Any, names: list[str], what: str, default: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        if what == "method" and value != "auto" and value not in ALL_METHODS:
            raise MethodError(
                f"method: unknown drift method {value!r}; expected one of {sorted(ALL_METHODS)} or 'auto'"
            )
        return dict.fromkeys(names, value)
    unknown = [k for k in value if k not in names]
    if unknown:
        raise DataError(f"{what} given for columns {unknown} that are not compared; columns: {names[:20]}")
    return {n: value.get(n, default) for n in names}


def _check_options(compat: str | None, correction: str | None, share_threshold: float) -> None:
    if compat is not None and compat not in MODES:
        raise MethodError(f"compat: unknown compat mode {compat!r}; expected one of {list(MODES)} or None")
    if correction is not None and correction not in CORRECTIONS:
        raise MethodError(f"correction: unknown correction {correction!r}; expected one of {list(CORRECTIONS)} or None")
    if not 0 <= share_threshold <= 1:
        raise MethodError(f"share_threshold: expected a share in [0, 1], got {share_threshold!r}")
