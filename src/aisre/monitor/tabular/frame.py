"""Tabular inputs in any common form -> named numpy columns, the monitor's one input shape.

Accepted: pandas and polars DataFrames, pyarrow Tables, numpy 2-D arrays (columns named
`x0`, `x1`, ...), mappings of name -> sequence, and sequences of row mappings (what
`InferenceRecord.inputs` holds). Numeric columns become float64 with NaN for missing;
everything else becomes an object array of strings with None for missing. Text that
arrives as Arrow comes back as a read-only `TextColumn` (it carries its dictionary
encoding); `.copy()` gives an editable plain array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisre.errors import DataError, InvalidParameterError

Columns = dict[str, np.ndarray]


class TextColumn(np.ndarray):
    """An object array of str/None that also carries its dictionary encoding.

    `categories[codes[i]]` is value i; code -1 is missing. `normalise` makes these from
    Arrow text (pandas 3's default `str` dtype, polars, pyarrow), which arrives encoded for
    free, so that counting categories over millions of rows is a bincount over small
    integers instead of hashing every string again. Anything derived from it (a slice, a
    mask, a copy) is a plain object array: the encoding describes exactly this array.
    """

    categories: np.ndarray | None
    codes: np.ndarray | None

    @classmethod
    def encoded(cls, categories: np.ndarray, codes: np.ndarray) -> TextColumn:
        words = np.empty(len(categories) + 1, dtype=object)
        words[:-1] = categories
        words[-1] = None
        out = words[codes].view(cls)  # code -1 picks the trailing None
        out.categories, out.codes = categories, codes
        out.flags.writeable = False  # an edit in place would leave the encoding describing other data
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.categories = None
        self.codes = None

    def __reduce__(self) -> Any:  # pickles (and so process pools) see a plain object array
        return np.asarray(self).__reduce__()


def dictionary_codes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(categories in order of first appearance, int32 codes with -1 = missing) of Arrow text."""
    encoded = pc.dictionary_encode(text)
    categories = np.array(encoded.dictionary.to_pylist(), dtype=object)
    codes = pc.cast(encoded.indices, pa.int32()).fill_null(-1).to_numpy(zero_copy_only=False)
    return categories, codes


def encoding_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(categories, codes with -1 = missing) if `values` is an encoded TextColumn, else None."""
    if isinstance(values, TextColumn) and values.categories is not None and values.codes is not None:
        return values.categories, values.codes
    return None


def check_alpha(alpha: float) -> float:
    """A significance level in (0, 1), or InvalidParameterError naming `alpha`."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.number) or not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    return float(alpha)


def to_columns(data: Any, columns: Sequence[str] | None = None) -> Columns:
    """Convert `data` to {name: 1-D array}; `columns` selects (and orders) columns."""
    raw = _raw_columns(data)
    if columns is not None:
        missing = [c for c in columns if c not in raw]
        if missing:
            raise DataError(f"columns not found: {missing}; available: {sorted(raw)[:20]}")
        raw = {c: raw[c] for c in columns}
    return {str(name): normalise(values, str(name)) for name, values in raw.items()}


def normalise(values: Any, name: str = "column") -> np.ndarray:
    """A 1-D float64 array (NaN = missing) for numeric data, else an object array of str/None.

    Booleans are categories ("True"/"False"), as in Evidently. Conversion of text columns
    goes through pyarrow (C speed); mixed-type objects fall back to str() per value.
    """
    if isinstance(values, pa.ChunkedArray | pa.Array):
        converted = _from_arrow(values, name)
        if converted is None:
            raise DataError(
                f"column {name!r}: expected numbers, text, booleans or times, got Arrow type {values.type} "
                "(nested, binary or non-UTF-8 values have no drift test; exclude the column or convert it)"
            )
        return converted
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise DataError(f"column {name!r}: expected one value per row, got shape {array.shape}")
    kind = array.dtype.kind
    if kind in "iuf":
        return array.astype(np.float64, copy=False)
    if kind == "b":
        return np.where(array, "True", "False").astype(object)
    if kind in "US":
        return array.astype(object)
    if kind == "M" or kind == "m":  # times and durations as seconds (NaT -> NaN)
        nanos = array.astype(f"{'datetime64' if kind == 'M' else 'timedelta64'}[ns]")
        return np.where(np.isnat(nanos), np.nan, nanos.astype(np.int64) / 1e9)
    try:
        arrow = pa.array(array, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return _as_text(array)
    converted = _from_arrow(arrow, name)
    return converted if converted is not None else _as_text(array)


def _from_arrow(arrow: Any, name: str) -> np.ndarray | None:
    """Arrow data without a detour through Python objects per value: numbers to float64,
    text through its dictionary (each distinct string made once, then shared by index)."""
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    t = arrow.type
    if pa.types.is_dictionary(t):
        arrow = arrow.cast(t.value_type)
        t = arrow.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        as_float = pc.cast(arrow, pa.float64())
        return as_float.fill_null(np.nan).to_numpy(zero_copy_only=False)
    if pa.types.is_null(t):
        return np.full(len(arrow), None, dtype=object)
    if pa.types.is_boolean(t):
        arrow = pc.if_else(arrow, "True", "False")
        t = arrow.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return TextColumn.encoded(*dictionary_codes(arrow))
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_duration(t):
        unit = pa.duration("ns") if pa.types.is_duration(t) else pa.timestamp("ns")
        nanos = pc.cast(pc.cast(arrow, unit), pa.int64()).to_numpy(zero_copy_only=False)
        return np.where(np.asarray(arrow.is_null()), np.nan, nanos / 1e9)  # seconds, as numpy's path
    return None


def is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind == "f"


def _as_text(array: np.ndarray) -> np.ndarray:
    out = np.empty(len(array), dtype=object)
    for i, v in enumerate(array.tolist()):
        out[i] = None if v is None or (isinstance(v, float) and v != v) else str(v)
    return out


def _pandas_column(series: Any) -> Any:
    """Arrow-backed text stays in Arrow (pandas 3's default `str`); the rest as numpy."""
    if "pyarrow" in str(getattr(series.dtype, "storage", "")) or type(series.dtype).__name__ == "ArrowDtype":
        try:
            return pa.array(series)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    return series.to_numpy()


_FRAMES = ("pandas", "polars", "pyarrow")


def _raw_columns(data: Any) -> dict[str, Any]:
    if data is None:
        raise DataError("expected a table of data, got None")
    module = type(data).__module__.split(".")[0]
    names = list(getattr(data, "column_names", getattr(data, "columns", ()))) if module in _FRAMES else []
    if len(set(names)) != len(names):
        repeated = sorted({str(n) for n in names if names.count(n) > 1})
        raise DataError(f"columns {repeated} appear more than once; expected unique column names")
    if module == "pandas" and hasattr(data, "columns"):
        return {str(c): _pandas_column(data[c]) for c in data.columns}
    if module == "polars" and hasattr(data, "columns"):
        return {c: data[c].to_arrow() for c in data.columns}
    if module == "pyarrow" and hasattr(data, "column_names"):
        return {c: data.column(c) for c in data.column_names}
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return {"x0": data}
        if data.ndim != 2:
            raise DataError(f"expected a 2-D array (rows x columns), got shape {data.shape}")
        return {f"x{i}": data[:, i] for i in range(data.shape[1])}
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(row, Mapping) for row in data):
            keys: dict[str, None] = {}  # every row's keys, in order of first appearance
            for row in data:
                keys.update(dict.fromkeys(row))
            return {n: [row.get(n) for row in data] for n in keys}
        if not data:
            return {}
    raise DataError(
        f"expected a pandas/polars DataFrame, pyarrow Table, numpy array, mapping of columns "
        f"or list of row mappings, got {type(data).__name__}"
    )
