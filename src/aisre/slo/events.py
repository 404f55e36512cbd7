"""The store as good/total counts per bucket: one `MinuteSeries` per SLO, for the embedded evaluator.

Event SLIs (budgeting by events) are counted per minute in SQL, one ``GROUP BY CAST(ts/60 AS
INTEGER)`` over the records of the SLO's model (and version) in the window:

- availability: good = status ``ok``, total = ``ok`` + ``error``; a ``cancelled`` call (the caller
  left) is neither, as the gateway's metrics count it.
- latency / ttft / tpot: good = the field <= ``threshold_s``, total = records that have the field
  (a record without it is not counted).
- correctness: a labelled prediction equal to its label is good; it is judged at the *record's*
  minute (a late label changes the past, as a late-arriving sample does in Prometheus backfill).
  Records without a label, or whose label or prediction is null, are not counted.

Every route is counted (the Prometheus rules read metrics that do not filter routes either).
`where` keeps records whose ``tags.NAME`` or ``inputs.NAME`` equals the value (read from the
JSON body with SQLite's ``json_extract``).

Timeslice SLIs give one entry per timeslice, good 1 or 0 and total 1; a slice with no data has
total 0 and is not counted (no evidence is neither good nor bad):

- latency/ttft/tpot with ``percentile`` p: good when the nearest-rank p-quantile of the slice
  (numpy's ``inverted_cdf``: at least p of the slice's requests are at or under it) <= threshold_s.
- quality: `metric` over the slice's labelled records, computed by
  `aisre.monitor.performance.performance` (one implementation); good inside [min, max].
- drift / llm_quality / estimated_quality: from stored signals (`signal`, default
  ``dataset_drift`` as written by the monitoring jobs; ``estimated_<metric>`` from CBPE). A slice
  is bad when a signal whose window overlaps it is bad (drift: ``breached``; llm_quality: value >
  max; estimated_quality: value outside [min, max]); slices no signal covers are not counted.
- fairness and freshness: `aisre.slo.window_slis` (the gap per slice's records; the age of the newest
  training/reference mark at each slice's end).

Scale: event counts come from the per-minute buckets the store keeps as records and labels
commit (`aisre.store.buckets`; each SLO's bucket spec is this module's SQL, registered on first
evaluation and rebuilt from the records when the SLO changes), so 30 days are ~43,200 rows per
SLO whatever the traffic. Percentile and accuracy slices are judged from the same counts
(see `_percentile_slices`); other quality metrics, fairness and signals read the records of
each slice (labelled ones only for quality). `raw_event_series` counts from the records, as
the reference the buckets are tested against.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.config.slo import SLOConfig
from aisre.errors import AisreError, InvalidParameterError
from aisre.records import Signal
from aisre.slo import events_pg
from aisre.slo.budget import MinuteSeries
from aisre.store import buckets
from aisre.store.buckets import BucketSpec
from aisre.store.sqlite import SQLiteStore

MINUTE_S = 60.0
DEFAULT_DRIFT_SIGNAL = "dataset_drift"
_FIELD = {
    "latency": "i.latency_s",
    "ttft": "json_extract(i.body, '$.ttft_s')",
    "tpot": "json_extract(i.body, '$.tpot_s')",
}
_WHERE_KEY = re.compile(r"^(tags|inputs)\.(.+)$")
_REGRESSION = frozenset({"mae", "mse", "rmse", "mape", "r2"})


class NotEvaluable(AisreError):
    """The SLO cannot be judged from the store yet (its SLI kind is not implemented, or its data is
    not usable); the evaluator reports this as the SLO's status instead of failing."""


@dataclass(frozen=True)
class Window:
    """Buckets of `step_s` seconds from `start_s` (aligned to the step) up to `end_s`."""

    start_s: float
    end_s: float
    step_s: float

    @classmethod
    def ending(cls, end_s: float, length_s: float, step_s: float) -> Window:
        return cls(math.floor((end_s - length_s) / step_s) * step_s, end_s, step_s)

    @property
    def n(self) -> int:
        return max(int(math.ceil((self.end_s - self.start_s) / self.step_s)), 0)


def where_clause(slo: SLOConfig, dialect: str = "sqlite") -> tuple[str, list[Any]]:
    """SQL conditions (on alias `i`) and parameters for the SLO's model, version and `where`, in
    `dialect` ("sqlite" or "postgresql": `aisre.slo.events_pg`; placeholders are `?` in both).

    InvalidParameterError naming the key when a `where` key is neither tags.NAME nor inputs.NAME.
    """
    parts: list[str] = ["i.model = ?"]
    params: list[Any] = [slo.model]
    if slo.version is not None:
        parts.append("i.version = ?")
        params.append(slo.version)
    for key, value in slo.sli.where.items():
        match = _WHERE_KEY.match(key)
        if not match:
            raise InvalidParameterError(
                f"slos.{slo.name}.sli.where: key {key!r}: expected tags.NAME or inputs.NAME (e.g. tags.use_case)"
            )
        if dialect == "postgresql":
            sql, rest = events_pg.where_value(match[1], value)
            parts.append(sql)
            params += events_pg.where_params(sql, match[2], rest)
            continue
        path = "$." + match[1] + "." + '"' + match[2].replace('"', '\\"') + '"'
        parts.append("json_extract(i.body, ?) = ?")
        params += [path, value]
    return " AND ".join(parts), params


def sli_series(slo: SLOConfig, store: SQLiteStore, end_s: float, length_s: float | None = None) -> MinuteSeries:
    """Good/total per minute (events) or per timeslice (timeslices) over `length_s` (default: the
    period) ending at `end_s`. NotEvaluable when this SLI cannot be judged from the store yet."""
    length = slo.period_s if length_s is None else length_s
    if slo.budgeting_mode == "events":
        return _event_series(slo, store, Window.ending(end_s, length, MINUTE_S))
    window = Window.ending(end_s, length, slo.timeslice_s)
    good, total = _slices(slo, store, window)
    return MinuteSeries(window.start_s, good, total, window.step_s)


def _canonical(doc: str, path: str) -> str:
    """SQL for the canonical text of a class label stored in JSON, as `tabular.classes.canonical`
    makes it in Python (true -> '1', 2.0 -> '2', 'yes' -> 'yes', null -> NULL), so that 1, 1.0,
    true and "1" are one class in SQL as in `aisre.performance`."""
    v = f"json_extract({doc}, '{path}')"
    return (
        f"(CASE json_type({doc}, '{path}') WHEN 'true' THEN '1' WHEN 'false' THEN '0' "
        f"WHEN 'integer' THEN CAST({v} AS TEXT) "
        f"WHEN 'real' THEN (CASE WHEN {v} = CAST({v} AS INTEGER) THEN CAST(CAST({v} AS INTEGER) AS TEXT) "
        f"ELSE CAST({v} AS TEXT) END) WHEN 'text' THEN {v} END)"
    )


_TRUTH, _PRED = _canonical("l.value", "$"), _canonical("i.body", "$.prediction")
_BOTH = f"{_TRUTH} IS NOT NULL AND {_PRED} IS NOT NULL"
#: Binary classes 0/1 (positive 1, as `performance` by default): true positives, predicted positives,
#: actual positives, and rows with another class (such a slice is judged from its records).
_BINARY_SUMS = frozenset({"precision", "recall", "f1"})
_BINARY_SUMS_SQL = (
    f"{_TRUTH} = '1' AND {_PRED} = '1'",
    f"{_PRED} = '1' AND {_TRUTH} IS NOT NULL",
    f"{_TRUTH} = '1' AND {_PRED} IS NOT NULL",
    f"{_BOTH} AND ({_TRUTH} NOT IN ('0', '1') OR {_PRED} NOT IN ('0', '1'))",
)
#: Regression: n, sum |e|, sum e², sum |e| / max(|y|, eps) over numeric pairs, and pairs that are not
#: both numbers (such a slice is judged from its records). R² needs the spread of y: from the records.
_REGRESSION_SUMS = frozenset({"mae", "mse", "rmse", "mape"})
_Y, _YHAT = "json_extract(l.value, '$')", "json_extract(i.body, '$.prediction')"
_EPS = repr(float(np.finfo(np.float64).eps))
_NUMBERS = "json_type(l.value, '$') IN ('integer', 'real') AND json_type(i.body, '$.prediction') IN ('integer', 'real')"
_REGRESSION_SUMS_SQL = (
    f"{_NUMBERS}",
    f"CASE WHEN {_NUMBERS} THEN abs({_YHAT} - {_Y}) END",
    f"CASE WHEN {_NUMBERS} THEN ({_YHAT} - {_Y}) * ({_YHAT} - {_Y}) END",
    # REAL: with two JSON integers SQLite's `/` would divide as integers (|8 - 5| / 5 = 0)
    f"CASE WHEN {_NUMBERS} THEN CAST(abs({_YHAT} - {_Y}) AS REAL) / max(abs({_Y}), {_EPS}) END",
    f"l.value IS NOT NULL AND json_type(l.value, '$') != 'null' AND {_YHAT} IS NOT NULL AND NOT ({_NUMBERS})",
)


def event_spec(slo: SLOConfig, dialect: str = "sqlite") -> BucketSpec:
    """The per-minute (good, total) sums of an event SLI (or of the per-minute counts a timeslice
    SLI is judged from) as a `BucketSpec` the store maintains as it commits, in the store's SQL
    `dialect` ("sqlite", or "postgresql": the same values, `aisre.slo.events_pg`).

    NotEvaluable when the SLI is not made of events; InvalidParameterError for a bad `where` key.
    """
    if dialect == "postgresql":
        return _event_spec_pg(slo)
    cond, params = where_clause(slo)
    where = tuple(params)
    kind = slo.sli.kind
    if kind == "availability":
        return BucketSpec(slo.name, "records", ("i.status = 'ok'", "i.status IN ('ok', 'error')"), cond, (), where)
    if kind in _FIELD:
        values = (f"{_FIELD[kind]} <= ?", f"{_FIELD[kind]} IS NOT NULL")
        return BucketSpec(slo.name, "records", values, cond, (slo.sli.threshold_s,), where)
    if kind == "correctness" or (kind == "quality" and slo.sli.metric == "accuracy"):
        # A labelled prediction is judged when both sides are known; accuracy over a slice is the
        # same good / total (one definition for binary and multiclass).
        values = (f"{_TRUTH} = {_PRED}", f"{_TRUTH} IS NOT NULL AND {_PRED} IS NOT NULL")
        return BucketSpec(slo.name, "labels", values, cond, (), where)
    if kind == "quality" and slo.sli.metric in _BINARY_SUMS and slo.sli.pos_label is None:
        return BucketSpec(slo.name, "labels", _BINARY_SUMS_SQL, cond, (), where)
    if kind == "quality" and slo.sli.metric in _REGRESSION_SUMS:
        return BucketSpec(slo.name, "labels", _REGRESSION_SUMS_SQL, cond, (), where)
    raise NotEvaluable(f"a {kind!r} SLI is not made of events")


def _event_spec_pg(slo: SLOConfig) -> BucketSpec:
    cond, params = where_clause(slo, "postgresql")
    where = tuple(params)
    kind = slo.sli.kind
    if kind == "availability":
        values = ("(i.status = 'ok')::int", "(i.status IN ('ok', 'error'))::int")
        return BucketSpec(slo.name, "records", values, cond, (), where)
    if kind in events_pg.FIELD:
        field = events_pg.FIELD[kind]
        values = (f"({field} <= ?)::int", f"({field} IS NOT NULL)::int")
        return BucketSpec(slo.name, "records", values, cond, (slo.sli.threshold_s,), where)
    if kind == "correctness" or (kind == "quality" and slo.sli.metric == "accuracy"):
        return BucketSpec(slo.name, "labels", events_pg.ACCURACY, cond, (), where)
    if kind == "quality" and slo.sli.metric in _BINARY_SUMS and slo.sli.pos_label is None:
        return BucketSpec(slo.name, "labels", events_pg.BINARY_SUMS, cond, (), where)
    if kind == "quality" and slo.sli.metric in _REGRESSION_SUMS:
        return BucketSpec(slo.name, "labels", events_pg.REGRESSION_SUMS, cond, (), where)
    raise NotEvaluable(f"a {kind!r} SLI is not made of events")


def dialect_of(store: Any) -> str:
    """The store's SQL dialect: "postgresql" for a `PostgresStore`, else "sqlite"."""
    return str(getattr(store, "dialect", "sqlite"))


def _minute_counts(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per minute of `w` from the store's pre-aggregated buckets."""
    good, total = _minute_sums(slo, store, w)[:2]
    return good, total


def _minute_sums(slo: SLOConfig, store: SQLiteStore, w: Window) -> np.ndarray:
    """Every sum of the SLO's bucket spec per minute of `w`: shape (len(spec.values), w.n)."""
    dialect = dialect_of(store)
    spec = event_spec(slo, dialect)
    if dialect == "postgresql":
        return store.bucket_sums(spec, int(w.start_s // MINUTE_S), w.n)  # type: ignore[attr-defined]
    conn = store._conn()  # noqa: SLF001 - the store's own connection; buckets live in its file
    return buckets.ensure_and_read(conn, spec, int(w.start_s // MINUTE_S), w.n)


def _event_series(slo: SLOConfig, store: SQLiteStore, w: Window) -> MinuteSeries:
    good, total = _minute_counts(slo, store, w)
    return MinuteSeries(w.start_s, good, total, MINUTE_S)


def raw_event_series(slo: SLOConfig, store: SQLiteStore, end_s: float, length_s: float) -> MinuteSeries:
    """The same series as the buckets give, counted from the records themselves (the reference the
    buckets are tested against, and a check for anyone who doubts them)."""
    w = Window.ending(end_s, length_s, MINUTE_S)
    dialect = dialect_of(store)
    spec = event_spec(slo, dialect)
    join = "inferences i"
    if spec.source == "labels":  # SQLite: CROSS JOIN keeps the labels as the outer loop
        join = f"labels l {'' if dialect == 'postgresql' else 'CROSS '}JOIN inferences i ON i.id = l.record_id"
    sums, params = spec.sums()
    minute = events_pg.MINUTE if dialect == "postgresql" else "CAST(i.ts / 60 AS INTEGER)"
    sql = (
        f"SELECT {minute} AS minute, {sums} FROM {join} WHERE ({spec.where}) AND i.ts >= ? AND i.ts < ? GROUP BY minute"
    )
    first = int(w.start_s // MINUTE_S)
    goods, totals = np.zeros(w.n), np.zeros(w.n)
    for minute, g, t, *_ in _query(store, sql, [*params, *spec.where_params, w.start_s, w.end_s]):
        k = int(minute) - first
        if 0 <= k < w.n:
            goods[k], totals[k] = g or 0, t or 0
    return MinuteSeries(w.start_s, goods, totals, MINUTE_S)


def _query(store: Any, sql: str, params: list[Any]) -> Iterable[Any]:
    """Rows of a read-only query written with `?` placeholders, on either backend."""
    if dialect_of(store) == "postgresql":
        return store._fetch("reading SLO events", sql.replace("?", "%s"), params)  # noqa: SLF001
    return store._conn().execute(sql, params)  # noqa: SLF001


def _slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per slice, each 0 or 1; total 0 where the slice holds no data."""
    kind = slo.sli.kind
    if kind in _FIELD:
        if slo.sli.percentile is None:  # budgeting: timeslices on a per-event SLI: the slice's share
            return _share_slices(slo, store, w)
        return _percentile_slices(slo, store, w)
    if kind == "quality":
        from aisre.slo.quality_slices import quality_slices  # imported here: it imports this module

        return quality_slices(slo, store, w)
    if kind in ("drift", "llm_quality", "estimated_quality"):
        return _signal_slices(slo, store, w)
    if kind in ("availability", "correctness"):
        return _share_slices(slo, store, w)
    from aisre.slo import window_slis  # imported here: it imports this module

    if kind == "fairness":
        return window_slis.fairness_slices(slo, store, w)
    if kind == "freshness":
        return window_slis.freshness_slices(slo, store, w)
    raise NotEvaluable(f"a {kind!r} SLI is not evaluable from the store")


def _minute_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) sums per slice of `w` from the per-minute buckets (slices are whole minutes)."""
    good, total = _minute_counts(slo, store, Window(w.start_s, w.start_s + w.n * w.step_s, MINUTE_S))
    per = int(round(w.step_s / MINUTE_S))
    return good.reshape(w.n, per).sum(axis=1), total.reshape(w.n, per).sum(axis=1)


def _whole_minutes(w: Window) -> bool:
    return w.step_s % MINUTE_S == 0 and w.start_s % MINUTE_S == 0


def _share_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    # A per-event SLI budgeted by timeslices: a slice is good when its share of good events meets the objective.
    g, t = _minute_slices(slo, store, w)
    has = t > 0
    ok = np.where(has, g >= slo.objective * np.where(has, t, 1), False)
    return ok.astype(np.float64), has.astype(np.float64)


def _slice_rows(slo: SLOConfig, store: SQLiteStore, w: Window, columns: str, labelled: bool = False) -> Iterable[Any]:
    dialect = dialect_of(store)
    cond, params = where_clause(slo, dialect)
    pg = dialect == "postgresql"
    source = f"labels l {'' if pg else 'CROSS '}JOIN inferences i ON i.id = l.record_id" if labelled else "inferences i"
    sl = "floor((i.ts - ?) / ?)::bigint" if pg else "CAST((i.ts - ?) / ? AS INTEGER)"  # ts >= start: floor = trunc
    sql = f"SELECT {sl} AS slice, {columns} FROM {source} WHERE {cond} AND i.ts >= ? AND i.ts < ? ORDER BY slice"
    return _query(store, sql, [w.start_s, w.step_s, *params, w.start_s, w.end_s])


def _grouped(rows: Iterable[Any], n: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for row in rows:
        if 0 <= row[0] < n:
            out.setdefault(int(row[0]), []).append(row[1:])
    return out


def _percentile_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """A slice is good when its nearest-rank p-quantile is <= threshold_s.

    Why the buckets suffice: numpy's ``inverted_cdf`` quantile of n values is the m-th smallest,
    m = ceil(n*p - 1) + 1 (in float, as numpy computes it), and the m-th smallest is <= T exactly
    when at least m values are <= T. So the per-minute count under the threshold and the count
    of values (the latency SLI's own buckets) judge any percentile exactly, without the values.
    """
    if not _whole_minutes(w):
        return _percentile_slices_raw(slo, store, w)
    assert slo.sli.percentile is not None
    under, n = _minute_slices(slo, store, w)
    m = np.minimum(np.maximum(np.ceil(n * slo.sli.percentile - 1), 0) + 1, n)
    has = n > 0
    return (has & (under >= m)).astype(np.float64), has.astype(np.float64)


def _percentile_slices_raw(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """`_percentile_slices` from the values themselves (slices that are not whole minutes; the test reference)."""
    field = (events_pg.FIELD if dialect_of(store) == "postgresql" else _FIELD)[slo.sli.kind]
    rows = _slice_rows(slo, store, w, field)
    good, total = np.zeros(w.n), np.zeros(w.n)
    assert slo.sli.percentile is not None and slo.sli.threshold_s is not None
    for k, values in _grouped((r for r in rows if r[1] is not None), w.n).items():
        quantile = np.quantile(np.array([v[0] for v in values], dtype=float), slo.sli.percentile, method="inverted_cdf")
        total[k] = 1.0
        good[k] = float(quantile <= slo.sli.threshold_s)
    return good, total


def _inside(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _newest_per_window(signals: list[tuple[float, Signal]]) -> list[tuple[float, Signal]]:
    """The newest signal per window (and labels): a window checked again (late labels) is judged by
    its latest result, not by every result it ever had. Signals without a window are each kept."""
    newest: dict[tuple[Any, ...], tuple[float, Signal]] = {}
    for computed_at, signal in signals:  # oldest first, so the newest overwrites
        if signal.window_start is None and signal.window_end is None:
            key: tuple[Any, ...] = ("point", computed_at, id(signal))
        else:
            key = (signal.window_start, signal.window_end, tuple(sorted(signal.labels.items())))
        newest[key] = (computed_at, signal)
    return list(newest.values())


def _signal_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    sli = slo.sli
    if sli.where:
        raise NotEvaluable(f"where does not apply to a {sli.kind!r} SLI (signals are per model and version)")
    if sli.kind == "drift":
        name = sli.signal or DEFAULT_DRIFT_SIGNAL
    elif sli.kind == "estimated_quality":
        name = f"estimated_{sli.metric}"
    else:
        assert sli.signal is not None
        name = sli.signal
    good, total = np.zeros(w.n), np.zeros(w.n)
    bad = np.zeros(w.n, dtype=bool)
    for computed_at, signal in _newest_per_window(store.signals(model=slo.model, name=name, version=slo.version)):
        start = signal.window_start if signal.window_start is not None else computed_at
        end = signal.window_end if signal.window_end is not None else computed_at
        lo = int(math.floor((start - w.start_s) / w.step_s))
        hi = max(int(math.ceil((end - w.start_s) / w.step_s)), lo + 1)  # a point in time covers its slice
        lo, hi = max(lo, 0), min(hi, w.n)
        if hi <= lo:
            continue
        if sli.kind == "drift":
            is_bad = signal.breached
        elif sli.kind == "llm_quality":
            is_bad = signal.value is not None and signal.value > (sli.max if sli.max is not None else math.inf)
        else:
            is_bad = signal.value is not None and not _inside(signal.value, sli.min, sli.max)
        total[lo:hi] = 1.0
        bad[lo:hi] |= bool(is_bad)
    good[(total > 0) & ~bad] = 1.0
    return good, total
