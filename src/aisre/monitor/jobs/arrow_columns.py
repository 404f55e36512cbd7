"""A window's columns parsed by Arrow's JSON reader (C++), when that gives exactly what the Python path gives.

Parsing 100k JSON bodies into dicts and pulling columns out of them costs ~0.5 s in Python;
Arrow's reader parses the same newline-delimited bodies straight into columns in ~0.1 s.
Its type inference is not Python's, though, so it is used only where the two provably agree:
inputs, prediction, scores and output fields whose Arrow types are plain int64, double, bool,
string or null (the types `normalise` itself gets from `pa.array` on those Python values).
Anything else returns None and the caller takes the Python path: a type that changes between
rows (Arrow refuses it), non-mapping inputs, nested values, strings Arrow would read as times,
integers beyond int64, score classes missing from some rows, non-text output. The equality
of both paths on tricky records is tested in tests/test_monitor_jobs_columns.py.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from aisre.monitor.tabular.frame import Columns, normalise

_PLAIN = (pa.int64(), pa.float64(), pa.bool_(), pa.string(), pa.null())
_NUMBER = (pa.int64(), pa.float64())
_INT64_LIMIT = 2.0**63  # beyond it Python's path refuses (or keeps as uint64) what Arrow reads as a double


def parse(lines: bytes) -> tuple[int, Columns, Any] | None:
    """(rows, input columns, a builder of the output columns) of newline-delimited bodies, or None."""
    if not lines or len(lines) >= 2**31 - 1:  # Arrow's block size is an int32
        return None
    options = pj.ReadOptions(use_threads=False, block_size=len(lines) + 1)  # one block: one type inference
    try:
        table = pj.read_json(io.BytesIO(lines), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    inputs = _inputs(table)
    if inputs is None or not _outputs_plain(table):
        return None
    return table.num_rows, inputs, lambda: _outputs(table)


def _column(table: pa.Table, name: str) -> pa.Array | None:
    if name not in table.column_names:
        return None
    return table.column(name).combine_chunks()


def _plain(array: pa.Array) -> bool:
    if array.type not in _PLAIN:
        return False
    if array.type == pa.float64() and len(array) - array.null_count:
        low, high = pc.min_max(array).values()
        return max(abs(low.as_py()), abs(high.as_py())) < _INT64_LIMIT
    return True


def _inputs(table: pa.Table) -> Columns | None:
    column = _column(table, "inputs")
    if column is None or column.type == pa.null():  # no mapping in any record
        return {}
    if not pa.types.is_struct(column.type):
        return None
    rows = column.filter(column.is_valid())  # records whose inputs are null are not rows
    if not len(rows):
        return {}
    children = rows.flatten()
    if not all(_plain(c) for c in children):
        return None
    return {column.type.field(i).name: normalise(c, column.type.field(i).name) for i, c in enumerate(children)}


def _outputs_plain(table: pa.Table) -> bool:
    prediction = _column(table, "prediction")
    if prediction is not None and not _plain(prediction):
        return False
    text = _column(table, "output_text")
    if text is not None and text.type not in (pa.string(), pa.null()):
        return False
    tokens = _column(table, "output_tokens")
    if tokens is not None and tokens.type not in (*_NUMBER, pa.null()):
        return False
    scores = _column(table, "scores")
    if scores is None or scores.type == pa.null():
        return True
    if not pa.types.is_struct(scores.type):
        return False
    # a class missing from a record (NaN) and a null score (an error) look alike here: Python decides
    given = scores.filter(scores.is_valid()).flatten()
    return all(c.type in _NUMBER and c.null_count == 0 for c in given)


def _outputs(table: pa.Table) -> Columns:
    """What `outputs_to_columns` makes of the same records."""
    if not table.num_rows:
        return {}
    out: dict[str, Any] = {}
    prediction = _column(table, "prediction")
    if prediction is not None and prediction.null_count < len(prediction):
        out["prediction"] = prediction
    scores = _column(table, "scores")
    if scores is not None and pa.types.is_struct(scores.type):
        valid = np.asarray(scores.is_valid())
        names = [scores.type.field(i).name for i in range(scores.type.num_fields)]
        for name, child in sorted(zip(names, scores.flatten(), strict=True), key=lambda pair: pair[0]):
            out[f"score:{name}"] = np.where(valid, _floats(child), np.nan)
    text = _column(table, "output_text")
    if text is not None and text.null_count < len(text):
        lengths = pc.cast(pc.utf8_length(text), pa.float64()) if text.type == pa.string() else text
        out["response_length"] = np.asarray(lengths.fill_null(np.nan), dtype=np.float64)
    tokens = _column(table, "output_tokens")
    if tokens is not None and tokens.null_count < len(tokens):
        out["output_tokens"] = _floats(tokens)
    return {name: normalise(values, name) for name, values in out.items()}


def _floats(array: pa.Array) -> np.ndarray:
    """Numbers as float64, null as NaN; integers rounded as Python's float() rounds them (not Arrow's
    safe cast, which refuses integers beyond 2**53)."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
