"""`aisre.drift` over Spark or Dask DataFrames: partitions profiled where they live, merged on the driver.

Passes, each one `map_partitions` whose partials merge (engines.partition):

1. reference scan: per numeric column a profile with the KLL sketch, -inf count, value counts
   while few (up to 65,536 distinct values when the column's method needs them: chi-square, Z,
   L-infinity, Anderson-Darling, Cramer-von Mises); per categorical column every category's count;
2. only for an explicit PSI / Jensen-Shannon / Hellinger on a column with many distinct values:
   the exact reference deciles (the histogram methods' bin edges), by selection in narrow ranges
   around the sketch's estimate (widened and repeated if the sketch missed, so always exact);
3. current scan: the current's sketch, so the grid also follows the current's tails;
4. reference and current profiles over the fine grid (both sketches' quantiles + the deciles),
   the grid broadcast in the plan (not for a column its exact value tables already settle).

Histogram and count statistics (chi-square, Z, PSI, Jensen-Shannon, Hellinger, L-infinity, and
the auto choice) then equal the one-machine `drift()` to float rounding; KS and Wasserstein come
from the grid with a stated error bound (engines.binned). Anderson-Darling and Cramer-von Mises
are exact from the value tables, else from the grid with values in one bin tied (engines.ranks).
A local table on either side is one partition.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from aisre.monitor.drift import api
from aisre.monitor.drift import infinite as inf
from aisre.monitor.drift import thresholds as rules
from aisre.monitor.drift.auto import FEW_VALUES, SMALL_REFERENCE
from aisre.monitor.drift.base import DriftResult
from aisre.monitor.drift.histogram import DEFAULT_BINS, HistogramMethod
from aisre.monitor.drift.registry import MethodError, get_method
from aisre.monitor.drift.values import align
from aisre.monitor.engines import binned
from aisre.monitor.engines import ranks as rank_tests
from aisre.monitor.engines.common import check_columns, engine_for
from aisre.monitor.engines.partition import (
    EXACT_VALUE_LIMIT,
    PARTIALS,
    VALUE_LIMIT,
    CategoricalPart,
    ColumnPlan,
    NumericPart,
    merge_all,
    summarise,
)
from aisre.monitor.tabular.frame import DataError

_HISTOGRAM = ("psi", "jensenshannon", "hellinger")
_BY_VALUE = ("chisquare", "z", "linfinity")
_RANKS = ("anderson", "cramervonmises")


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
) -> api.DatasetDrift:
    """`aisre.drift` when either side is a Spark or Dask DataFrame (same parameters, same result type)."""
    api._check_options(compat, correction, share_threshold)
    inf.check_policy(infinite)
    if compat is not None:
        raise MethodError(
            f"compat: {compat!r} bins like its peer, over raw values; on a Spark/Dask frame use compat=None"
        )
    if chunk_size is not None or n_chunks is not None:
        raise MethodError("chunk_size/n_chunks: reference chunks are not available on a Spark/Dask frame")
    ref_engine, cur_engine = engine_for(reference), engine_for(current)
    ref_names = ref_engine.columns(reference)
    names = list(ref_names) if columns is None else list(columns)
    if not names:
        raise DataError("no columns to compare: the reference has no columns")
    check_columns(ref_names, names, "reference")
    check_columns(cur_engine.columns(current), names, "current")
    methods = api._per_column(method, names, "method", "auto")
    thresholds = api._per_column(threshold, names, "threshold", None)
    for name, t in thresholds.items():
        if isinstance(t, str | rules.Threshold):
            raise MethodError(
                f"threshold for column {name!r}: {t!r} needs reference chunks, which a Spark/Dask reference "
                "does not keep; pass a number"
            )

    def run(engine: Any, frame: Any, plans: dict[str, ColumnPlan], role: str) -> dict[str, Any]:
        fn = functools.partial(summarise, plans=plans)
        merged = merge_all(engine.map_partitions(frame, list(plans), fn, PARTIALS))
        if merged is None or merged["rows"] == 0:
            raise DataError(f"the {role} window is empty (0 rows); nothing to compare")
        return merged

    # exact value tables (up to EXACT_VALUE_LIMIT distinct values) only where the method needs them
    scans = {n: ColumnPlan(sketch=True, value_limit=_value_limit(methods[n])) for n in names}
    ref_scan = run(ref_engine, reference, scans, "reference")
    current_scan = run(cur_engine, current, scans, "current")
    scan, cur_scan = ref_scan["columns"], current_scan["columns"]
    scan_rows = ref_scan["rows"], current_scan["rows"]
    _refuse_overflowing(scan, cur_scan, methods)
    deciles = _exact_deciles(scan, methods, lambda plans: run(ref_engine, reference, plans, "reference")["columns"])
    plans = {}  # the grid passes: numeric columns only (the scans' category counts are already final)
    for name in names:
        part, other = scan[name], cur_scan[name]
        if isinstance(part, NumericPart) and part.profile.n and _needs_grid(methods[name], part, other):
            quantiles = [_sketch_quantiles(p) for p in (part, other) if isinstance(p, NumericPart) and p.profile.n]
            if methods[name] in _RANKS:  # the sketch's end quantiles are retained items, not the extremes: add
                # the exact min and max, so the outermost gaps (where rank tests weigh most) are cut finely too
                quantiles += [np.array([p.profile.min, p.profile.max]) for p in (part, other) if p.profile.n]
            edges = binned.grid_edges(np.concatenate(quantiles), deciles.get(name, np.empty(0)))
            plans[name] = ColumnPlan(edges=tuple(edges.tolist()), value_limit=0)
    ref_parts, cur_parts = dict(scan), dict(cur_scan)
    if plans:
        for parts, first, (engine, frame, role) in (
            (ref_parts, scan, (ref_engine, reference, "reference")),
            (cur_parts, cur_scan, (cur_engine, current, "current")),
        ):
            for name, part in run(engine, frame, plans, role)["columns"].items():
                if isinstance(part, NumericPart) and isinstance(first[name], NumericPart):
                    # the value tables come from the scan (the grid pass does not count them again)
                    part.values, part.limit, part.distinct = first[name].values, first[name].limit, first[name].distinct
                parts[name] = part
    ref_rows, cur_rows = scan_rows
    results = {}
    for name in names:
        results[name] = _column(
            name, ref_parts[name], cur_parts[name], ref_rows, cur_rows, deciles.get(name),
            methods[name], thresholds[name], infinite, ref_engine.name, cur_engine.name,
        )  # fmt: skip
        if progress is not None:
            progress(name)
    if correction is not None:
        results = api._corrected(results, correction)
    share = sum(r.drift for r in results.values()) / len(results)
    return api.DatasetDrift(results, share, bool(share >= share_threshold), share_threshold, correction, None, infinite)


def _value_limit(method: str) -> int:
    return EXACT_VALUE_LIMIT if method in _BY_VALUE or method in _RANKS else VALUE_LIMIT


def _needs_grid(method: str, ref: NumericPart, cur: Any) -> bool:
    """Value-by-value methods and rank tests with both value tables kept read only those tables."""
    if method in _BY_VALUE:
        return False
    exact = ref.values is not None and isinstance(cur, NumericPart) and cur.values is not None
    return not (method in _RANKS and exact)


def _refuse_overflowing(scan: dict[str, Any], cur_scan: dict[str, Any], methods: dict[str, str]) -> None:
    """A value-by-value method on a numeric column past the exact-table cap: refused before the grid passes."""
    for name, method in methods.items():
        ref, cur = scan[name], cur_scan[name]
        if method not in _BY_VALUE or not (isinstance(ref, NumericPart) and isinstance(cur, NumericPart)):
            continue
        if ref.values is None or cur.values is None:
            seen = max(ref.distinct, cur.distinct)
            side = "reference" if ref.values is None else "current"
            raise DataError(
                f"column {name!r}: method {method!r} compares value by value (each distinct value a category), "
                f"but the {side} window has more than {ref.limit:,} distinct values (at least {seen:,} seen); "
                "on a Spark/Dask frame the exact value table is kept up to that cap. Use psi, jensenshannon, "
                "hellinger, ks or wasserstein for a continuous column, or round/bucket it first"
            )


def _sketch_quantiles(part: NumericPart) -> np.ndarray:
    sketch = part.profile.sketch
    return np.asarray(sketch.get_quantiles(np.linspace(0.0, 1.0, binned.GRID_QUANTILES + 1).tolist()))


def _exact_deciles(
    scan: dict[str, Any], methods: dict[str, str], rerun: Callable[[dict[str, ColumnPlan]], dict[str, Any]]
) -> dict[str, np.ndarray]:
    """The histogram methods' inner edges (`quantile_edges(ref, 10)`), exactly, for every numeric column
    that may need them: from the value counts when the column has few values, else by selection."""
    out: dict[str, np.ndarray] = {}
    wanted: dict[str, np.ndarray] = {}
    for name, part in scan.items():
        if not isinstance(part, NumericPart) or part.profile.n == 0:
            continue
        ranks = binned.rank_positions(part.profile.n, DEFAULT_BINS)
        if part.values is not None:
            out[name] = np.unique(binned.values_at_ranks(part.values, ranks))
        elif methods[name] in _HISTOGRAM:
            wanted[name] = ranks
    width = 0.03
    while wanted:  # each round narrows nothing it already knows; the last widens to everything
        plans = {}
        for name, ranks in wanted.items():
            sketch, n = scan[name].profile.sketch, scan[name].profile.n
            brackets = []
            for r in ranks:
                q = r / n
                lo = -math.inf if width >= 1 else float(sketch.get_quantile(max(0.0, q - width)))
                hi = math.inf if width >= 1 else float(sketch.get_quantile(min(1.0, q + width)))
                brackets.append((lo, hi))
            plans[name] = ColumnPlan(brackets=tuple(brackets), value_limit=0)
        found = rerun(plans)
        for name, ranks in list(wanted.items()):
            part = found[name]
            values = []
            for r, below, inside in zip(ranks, part.below, part.inside, strict=True):
                if below <= r < below + len(inside):
                    values.append(np.partition(inside, r - below)[r - below])
                else:
                    break
            if len(values) == len(ranks):
                out[name] = np.unique(np.array(values, dtype=np.float64))
                del wanted[name]
        width = 1.0 if width >= 0.1 else width * 4
    return out


def _column(
    name: str,
    ref: Any,
    cur: Any,
    ref_rows: int,
    cur_rows: int,
    deciles: np.ndarray | None,
    method: str,
    threshold: float | None,
    infinite: str,
    ref_engine: str,
    cur_engine: str,
) -> DriftResult:
    cur = _same_kind(name, ref, cur)
    n_ref, inf_ref, miss_ref = _counts(ref)
    n_cur, inf_cur, miss_cur = _counts(cur)
    if infinite == "error" and (inf_ref or inf_cur):
        raise inf.refuse(
            name, "reference" if inf_ref else "current", inf_ref or inf_cur, ref_rows if inf_ref else cur_rows
        )
    if n_ref == 0:
        raise DataError(
            f"column {name!r}: the reference has no non-missing finite values ({ref_rows} rows: "
            f"{miss_ref} missing, {inf_ref} infinite); there is nothing to compare against -- "
            "exclude it with columns=[...]"
        )
    chosen = _auto(ref, cur, n_ref) if method == "auto" else method
    tester = get_method(chosen, threshold, None)
    details: dict[str, Any] = {
        "n_reference": n_ref,
        "n_current": n_cur,
        "missing_reference": miss_ref,
        "missing_current": miss_cur,
        "engine": f"{ref_engine}/{cur_engine}",
    }
    if n_cur == 0:
        what = "missing" if inf_cur == 0 else f"missing or infinite ({miss_cur} missing, {inf_cur} infinite)"
        details["note"] = (
            f"all {cur_rows} current values are {what} (reference had {n_ref} values): reported as drift, no statistic"
        )
        result = DriftResult(tester.name, math.nan, None, tester.threshold, True, name, details)
    else:
        statistic, p_value = _statistic(name, chosen, ref, cur, deciles, details)
        drift = tester.is_drift(statistic, p_value)
        result = DriftResult(tester.name, statistic, p_value, tester.threshold, drift, name, details)
        if method == "auto":
            details["auto"] = True
    return inf.with_counts(result, infinite, inf_ref, n_ref + inf_ref, inf_cur, n_cur + inf_cur)


def _counts(part: Any) -> tuple[int, int, int]:
    """(finite present, infinite, missing)."""
    if isinstance(part, NumericPart):
        return part.profile.n, part.profile.infinite, part.profile.missing
    return part.present, 0, part.missing


def _same_kind(name: str, ref: Any, cur: Any) -> Any:
    if type(ref) is type(cur):
        return cur
    if cur.present == 0:
        missing = cur.missing if isinstance(cur, CategoricalPart) else cur.profile.missing
        if isinstance(ref, CategoricalPart):
            return CategoricalPart({}, missing)
        from aisre.monitor.profiles.profile import NumericProfile

        profile = NumericProfile(ref.profile.edges.copy(), missing=missing)
        return NumericPart(profile, 0, {}, [], [])
    ref_numeric = isinstance(ref, NumericPart)
    example = next(iter(cur.counts)) if ref_numeric else next(iter(cur.values or {0.0: 0}))
    raise DataError(
        f"column {name!r} is {'numeric' if ref_numeric else 'text'} in the reference but "
        f"{'text' if ref_numeric else 'numeric'} in the current data (e.g. {example!r}); "
        "make both the same type or exclude the column with columns=[...]"
    )


def _auto(ref: Any, cur: Any, n_ref: int) -> str:
    """auto_method's choice (Evidently's default), from the merged counts."""
    if isinstance(ref, CategoricalPart):
        if n_ref > SMALL_REFERENCE:
            return "jensenshannon"
        return "chisquare" if len(set(ref.counts) | set(cur.counts)) > 2 else "z"
    many = ref.values is None or cur.values is None
    n_values = FEW_VALUES + 1 if many else len(set(ref.values) | set(cur.values))
    if n_values <= FEW_VALUES:
        return "jensenshannon" if n_ref > SMALL_REFERENCE else ("chisquare" if n_values > 2 else "z")
    return "ks" if n_ref <= SMALL_REFERENCE else "wasserstein"


def _statistic(
    name: str, method: str, ref: Any, cur: Any, deciles: np.ndarray | None, details: dict[str, Any]
) -> tuple[float, float | None]:
    if isinstance(ref, CategoricalPart) or method in _BY_VALUE:
        labels, ref_counts, cur_counts = _aligned(name, method, ref, cur)
        details["categories"] = len(labels)
        if method == "chisquare":
            statistic, p, unseen = binned.chisquare_from_counts(ref_counts, cur_counts)
            if unseen:
                details["unseen"] = [labels[i] for i in np.flatnonzero(ref_counts == 0)[:20]]
            return statistic, p
        if method == "z":
            return binned.z_from_counts(labels, ref_counts, cur_counts)
        if method == "linfinity" or method in _HISTOGRAM:
            return _histogram(method)(ref_counts, cur_counts), None
        raise DataError(
            f"column {name!r} (method {method!r}): method {method!r} needs numeric values, got categorical ones"
        )
    ref_bins, cur_bins = _finite_counts(ref), _finite_counts(cur)
    if method in _HISTOGRAM:
        if deciles is None:  # pragma: no cover - _exact_deciles covers every histogram column
            raise DataError(f"column {name!r}: no exact bin edges")
        details["bin_edges"] = deciles.tolist()
        grid = ref.profile.edges
        where = np.concatenate([[0], np.searchsorted(deciles, grid[:-1], side="right")])
        coarse = [
            np.bincount(where, weights=c, minlength=len(deciles) + 1).astype(np.int64) for c in (ref_bins, cur_bins)
        ]
        return _histogram(method)(*coarse), None
    if method in _RANKS:
        return rank_tests.rank_test(name, method, ref, cur, (ref_bins, cur_bins), details)
    exact = ref.values is not None and cur.values is not None
    if method == "ks" and exact:
        d_exact, _ = binned.exact_from_values(ref.values, cur.values)
        details.update(error_bound=0.0, exact_from="value counts")
        return d_exact, binned.ks_p_value(d_exact, ref.profile.n, cur.profile.n)
    if method == "wasserstein" and exact:
        _, w_exact = binned.exact_from_values(ref.values, cur.values)
        std = math.sqrt(ref.profile.variance)
        details.update(wasserstein=w_exact, reference_std=std, error_bound=0.0, exact_from="value counts")
        return w_exact / max(std, 0.001), None
    if method == "ks":
        d = binned.ks_bounded(ref_bins, cur_bins)
        details.update(statistic_bounds=[d.lower, d.upper], error_bound=d.error_bound, grid_bins=len(ref_bins))
        return d.estimate, binned.ks_p_value(d.estimate, ref.profile.n, cur.profile.n)
    if method == "wasserstein":
        lo, hi = min(ref.profile.min, cur.profile.min), max(ref.profile.max, cur.profile.max)
        w = binned.wasserstein_bounded(ref_bins, cur_bins, ref.profile.edges, lo, hi, ref.sums, cur.sums)
        std = math.sqrt(ref.profile.variance)
        scale = max(std, 0.001)
        details.update(
            wasserstein=w.estimate,
            reference_std=std,
            statistic_bounds=[w.lower / scale, w.upper / scale],
            error_bound=w.error_bound / scale,
            grid_bins=len(ref_bins),
        )
        return w.estimate / scale, None
    raise MethodError(f"method for column {name!r}: {method!r} is not available on a Spark/Dask frame")


def _histogram(method: str) -> Callable[[np.ndarray, np.ndarray], float]:
    cls: type[HistogramMethod] = type(get_method(method))  # type: ignore[assignment]
    return cls.from_counts


def _aligned(name: str, method: str, ref: Any, cur: Any) -> tuple[list, np.ndarray, np.ndarray]:
    """Counts of both windows over the union of categories (values), reference order first."""
    if isinstance(ref, CategoricalPart):
        ref_map, cur_map = ref.counts, cur.counts
    else:
        if ref.values is None or cur.values is None:  # pragma: no cover - _refuse_overflowing stops it earlier
            raise DataError(
                f"column {name!r}: method {method!r} compares value by value, but the column has more than "
                f"{ref.limit} distinct values; use ks, wasserstein or a histogram method"
            )
        ref_map = dict(sorted(ref.values.items()))
        cur_map = dict(sorted(cur.values.items()))
    ref_labels = list(ref_map)
    return align(
        ref_labels,
        np.array([ref_map[k] for k in ref_labels], dtype=np.int64),
        list(cur_map),
        np.array(list(cur_map.values()), dtype=np.int64),
    )


def _finite_counts(part: NumericPart) -> np.ndarray:
    """The grid profile's counts of finite values only (the profile puts -inf in the first bin and +inf in the
    last closed one), without the always-empty bin above +inf."""
    counts = part.profile.counts[:-1].copy()
    counts[0] -= part.neginf
    counts[-1] -= part.profile.infinite - part.neginf
    return counts
