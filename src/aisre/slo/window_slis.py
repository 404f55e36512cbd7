"""Timeslice SLIs judged from a whole slice or from marks in time: fairness and freshness.

Each function returns `(good, total)` per timeslice of the `Window`, each 0 or 1, as
`aisre.slo.events._slices` does for the other kinds; a slice with total 0 is not counted.

- fairness: `metric` (a gap of `aisre.monitor.fairness`: Fairlearn's definitions) across the
  groups of the input field `sensitive` (``inputs.NAME`` or a bare NAME; ``tags.NAME`` for a tag)
  over the slice's records. A slice is counted when its records fall in at least two groups and
  the gap is defined; the label-needing gaps (equal opportunity, equalized odds) also need labelled
  records in the slice (joined as they arrive). Good when the gap is inside [min, max].
- freshness: the age of the model at each slice's end, from *marks* (see `aisre.slo.marks`): the
  newest mark recorded by then (``model_trained_at`` and/or ``reference_refreshed_at`` as `source`
  says) gives the age; good when it is at most `max_age`. Once the model has records but no mark,
  a slice is bad: the SLO claims freshness and nothing shows it. Before the first mark and the
  first record nothing is counted (the model was not there to judge).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from aisre.config.slo import SLOConfig
from aisre.errors import AisreError, InvalidParameterError
from aisre.slo.events import NotEvaluable, Window, _query, dialect_of, where_clause
from aisre.slo.events_pg import sqlite_json_value
from aisre.slo.marks import ALL_VERSIONS, mark_names
from aisre.store.sqlite import SQLiteStore

#: Fairness gaps computed from labels (TPR/FPR per group); the others need predictions only.
LABEL_GAPS = frozenset({"equal_opportunity_difference", "equalized_odds_difference"})


def _inside(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def sensitive_scope(field: str) -> tuple[str, str]:
    """(scope, name) of the sensitive field: inputs.NAME (default) or tags.NAME."""
    scope, _, name = field.partition(".") if field.startswith(("inputs.", "tags.")) else ("inputs", "", field)
    if not name:
        raise InvalidParameterError(f"sensitive: expected an input field name (or tags.NAME), got {field!r}")
    return scope, name


def sensitive_path(field: str) -> str:
    """The JSON path of the sensitive field in a record's body: inputs.NAME (default) or tags.NAME."""
    scope, name = sensitive_scope(field)
    return "$." + scope + '."' + name.replace('"', '\\"') + '"'


def fairness_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per slice: the fairness gap of each slice's records (see the module docstring)."""
    from aisre.monitor.fairness import fairness  # the one implementation (equal to Fairlearn)

    sli = slo.sli
    assert sli.metric is not None and sli.sensitive is not None
    needs_labels = sli.metric in LABEL_GAPS
    dialect = dialect_of(store)
    cond, params = where_clause(slo, dialect)
    label, join = ("l.value", "JOIN labels l ON l.record_id = i.id") if needs_labels else ("NULL", "")
    if dialect == "postgresql":  # the values SQLite's json_extract gives, decoded in Python
        scope, name = sensitive_scope(sli.sensitive)
        columns, path = f"(i.body::json -> 'prediction')::text, (i.body::json -> '{scope}' -> ?)::text", name
        slice_of = "floor((i.ts - ?) / ?)::bigint"  # ts >= start: floor = SQLite's truncation
    else:
        columns, path = "json_extract(i.body, '$.prediction'), json_extract(i.body, ?)", sensitive_path(sli.sensitive)
        slice_of = "CAST((i.ts - ?) / ? AS INTEGER)"
    sql = (
        f"SELECT {slice_of} AS slice, {columns}, {label} FROM inferences i {join} "
        f"WHERE {cond} AND i.ts >= ? AND i.ts < ?"
    )
    args = [w.start_s, w.step_s, path, *params, w.start_s, w.end_s]
    rows: Any = _query(store, sql, args)
    if dialect == "postgresql":
        rows = [(k, sqlite_json_value(p), sqlite_json_value(g), v) for k, p, g, v in rows]
    by_slice: dict[int, list[tuple[Any, Any, Any]]] = {}
    for k, pred, group, label in rows:
        if 0 <= k < w.n and pred is not None and group is not None:
            by_slice.setdefault(int(k), []).append((pred, group, label))
    good, total = np.zeros(w.n), np.zeros(w.n)
    pos_label = 1 if sli.pos_label is None else sli.pos_label
    for k, rows in by_slice.items():
        if len({str(g) for _, g, _ in rows}) < 2:
            continue  # one group has no gap to speak of
        y_true = [orjson.loads(v) if v is not None else None for _, _, v in rows] if needs_labels else None
        try:
            report = fairness(y_true, [p for p, _, _ in rows], [g for _, g, _ in rows], pos_label=pos_label)
        except AisreError as exc:
            hint = " (sli.pos_label names the positive class; default 1)" if "binary" in str(exc) else ""
            raise NotEvaluable(f"fairness {sli.metric} over {sli.sensitive}: {exc}{hint}") from None
        value = float(getattr(report, sli.metric))
        if math.isnan(value):  # e.g. no group with positive labels: the gap is undefined
            continue
        total[k] = 1.0
        good[k] = float(_inside(value, sli.min, sli.max))
    return good, total


def freshness_slices(slo: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per slice: the newest mark's age at each slice's end (see the module docstring)."""
    sli = slo.sli  # `where` is refused for freshness when the config loads: marks are per model and version
    assert sli.max_age_s is not None
    # A slice is judged at its end, or now for the slice still in progress.
    ends = np.minimum(w.start_s + w.step_s * np.arange(1, w.n + 1), w.end_s)
    newest = np.full(w.n, -math.inf)
    for name in mark_names(sli.source):
        for recorded_at, mark in store.signals(model=slo.model, name=name):
            if slo.version is not None and mark.version not in (slo.version, ALL_VERSIONS):
                continue
            if mark.value is None or not math.isfinite(mark.value):
                continue
            # A mark counts from when it was recorded (it cannot make the past fresher than was known)
            # and never before the time it names.
            known = ends >= max(recorded_at, mark.value)
            newest = np.where(known, np.maximum(newest, mark.value), newest)
    marked = np.isfinite(newest)
    first = _first_record_ts(slo, store, w)
    served = ends > first if first is not None else np.zeros(w.n, dtype=bool)
    total = (marked | served).astype(np.float64)
    good = (marked & (ends - newest <= sli.max_age_s)).astype(np.float64)
    return good, total


def _first_record_ts(slo: SLOConfig, store: SQLiteStore, w: Window) -> float | None:
    """The earliest record of the model (and version) before the window's end, or None.

    Asks first whether any record precedes the window (one index probe), so a long-lived model
    costs nothing; only a model whose first record is inside the window is searched for it."""
    cond, params = "i.model = ?", [slo.model]
    if slo.version is not None:
        cond, params = cond + " AND i.version = ?", [*params, slo.version]
    before = list(_query(store, f"SELECT 1 FROM inferences i WHERE {cond} AND i.ts < ? LIMIT 1", [*params, w.start_s]))
    if before:
        return -math.inf
    rows = list(
        _query(
            store,
            f"SELECT MIN(i.ts) FROM inferences i WHERE {cond} AND i.ts >= ? AND i.ts < ?",
            [*params, w.start_s, w.end_s],
        )
    )
    return None if not rows or rows[0][0] is None else float(rows[0][0])
