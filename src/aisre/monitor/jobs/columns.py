"""A window's inputs and outputs as named columns, read from the store's JSON bodies without record objects.

`input_columns`/`output_columns` (in `checks`) turn `InferenceRecord`s into columns; building
those records (a dataclass and two Enums per row) cost the monitoring jobs four times what the
drift itself costs on a 100k-record window. `read_window` takes the same values straight from
each record's parsed `body` (`SQLiteStore.record_bodies`) and hands them to the same column
builders below, so both paths give the same columns, value for value (tests/test_monitor_jobs_columns.py).
A store without `record_bodies` is read through its records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from aisre.monitor.jobs import arrow_columns
from aisre.monitor.tabular.frame import Columns, to_columns
from aisre.store.base import RecordFilter


def inputs_to_columns(inputs: Sequence[Any]) -> Columns:
    """Each mapping in `inputs` as one row; anything else (a list, a string, None) is not tabular."""
    rows = [x for x in inputs if isinstance(x, dict)]
    return to_columns(rows) if rows else {}


def outputs_to_columns(
    predictions: Sequence[Any], scores: Sequence[Any], texts: Sequence[Any], tokens: Sequence[Any]
) -> Columns:
    """Model outputs as columns: `prediction`, `score:<class>`, `response_length`, `output_tokens`
    (one value per record; the four sequences are the records' fields of those names)."""
    if not predictions:
        return {}
    out: dict[str, list[Any]] = {}
    if any(p is not None for p in predictions):
        out["prediction"] = [_scalar(p) for p in predictions]
    classes = sorted({str(k) for s in scores if isinstance(s, dict) for k in s})
    for c in classes:
        out[f"score:{c}"] = [float(s[c]) if isinstance(s, dict) and c in s else np.nan for s in scores]
    if any(t is not None for t in texts):
        out["response_length"] = [np.nan if t is None else float(len(t)) for t in texts]
    if any(t is not None for t in tokens):
        out["output_tokens"] = [np.nan if t is None else float(t) for t in tokens]
    return to_columns(out)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str | bool) else str(value)


_FIELDS = ("inputs", "prediction", "scores", "output_text", "output_tokens")


class WindowColumns:
    """One window read once: `rows` records, their input columns, and their output columns (built
    when first asked for, as `output_columns` would build them)."""

    def __init__(self, rows: int, inputs: Columns, outputs: Callable[[], Columns]) -> None:
        self.rows = rows
        self.inputs = inputs
        self._outputs = outputs

    @cached_property
    def outputs(self) -> Columns:
        return self._outputs()


def read_window(store: Any, where: RecordFilter) -> WindowColumns:
    """The records `where` selects, in time order, as columns: Arrow's JSON reader where it is exact
    (`arrow_columns`), else each body parsed by orjson; a store without `body_lines` through its records."""
    bodies = None
    if hasattr(store, "body_lines"):
        lines = store.body_lines(where)
        fast = arrow_columns.parse(lines)
        if fast is not None:
            return WindowColumns(*fast)
        try:  # a body is one line of compact JSON (the codec writes it so): one parse for the window
            bodies = orjson.loads(b"[" + lines.replace(b"\n", b",") + b"]")
        except orjson.JSONDecodeError:  # a body written some other way: each record as the store decodes it
            bodies = None
    if bodies is not None:
        fields = [[b.get(k) for b in bodies] for k in _FIELDS]
    else:
        records = store.records(where)
        fields = [[getattr(r, k) for r in records] for k in _FIELDS]
    return WindowColumns(len(fields[0]), inputs_to_columns(fields[0]), lambda: outputs_to_columns(*fields[1:]))
