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
from aisre.monitor.drift.auto import auto_method
from aisre.monitor.drift.base import DriftResult
from aisre.monitor.drift.compat import MODES
from aisre.monitor.drift.correction import CORRECTIONS, adjust
from aisre.monitor.drift.registry import METHODS, MethodError, get_method
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
    threshold: float | Mapping[str, float] | None = None,
    compat: str | None = None,
    correction: str | None = None,
    share_threshold: float = 0.5,
    progress: Callable[[str], None] | None = None,
    infinite: str = "flag",
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
    """
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
    thresholds = _per_column(threshold, names, "threshold", None)

    def one(name: str) -> DriftResult:
        result = _column_drift(name, ref_cols[name], cur_cols[name], methods[name], thresholds[name], compat, infinite)
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
    threshold: float | None,
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
    tester = get_method(chosen, threshold, compat)
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
        if what == "method" and value != "auto" and value not in METHODS:
            raise MethodError(f"method: unknown drift method {value!r}; expected one of {sorted(METHODS)} or 'auto'")
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
