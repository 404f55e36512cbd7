"""Class labels of any common type (ints, floats, bools, strings, None/NaN) -> integer codes.

Labels arrive from many places: numpy arrays, JSON-decoded store rows (`1`, `"1"`, `1.0`),
score dicts keyed by strings (`{"0": 0.2, "1": 0.8}`). They are compared by a canonical
text form: integral numbers and bools become `"1"`/`"0"`, other values `str(value)`, so
`1`, `1.0`, `True` and `"1"` name the same class. None and NaN are *missing* (code -1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError

MISSING = -1


def canonical(value: Any) -> str | None:
    """The canonical text of one label; None when missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if value != value:
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def as_array(values: Any, name: str) -> np.ndarray:
    """A 1-D numpy array of the values (pandas/polars series and lists accepted)."""
    if values is None:
        raise DataError(f"{name}: expected a sequence of values, got None")
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.ndim == 0:
        raise DataError(f"{name}: expected a sequence of values, got a scalar {values!r}")
    if array.ndim != 1:
        raise DataError(f"{name}: expected one value per row, got shape {array.shape}")
    return array


def factorize(array: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    """(canonical text of each distinct value, index of each row into that list).

    Numeric arrays go through np.unique (vectorised); object arrays through one dict pass.
    """
    if array.dtype.kind in "biuf":
        uniques, inverse = np.unique(array, return_inverse=True)
        return [canonical(u) for u in uniques.tolist()], inverse.reshape(-1)
    seen: dict[Any, int] = {}
    inverse = np.empty(len(array), dtype=np.int64)
    for i, v in enumerate(array.tolist()):
        key = v if isinstance(v, str) or v is None else ("\0", canonical(v))
        code = seen.get(key)
        if code is None:
            code = seen[key] = len(seen)
        inverse[i] = code
    names = [k if isinstance(k, str) or k is None else k[1] for k in seen]
    return names, inverse


def sort_classes(names: Sequence[str]) -> list[str]:
    """Numeric order when every name is a number ("2" < "10"), else text order."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def encode(arrays: Sequence[np.ndarray], classes: Sequence[Any] | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Integer codes (MISSING for None/NaN) of each array into one shared class list.

    With `classes` given, the class list is exactly those (canonicalised) and a value
    outside it raises DataError; otherwise it is every value seen, in `sort_classes` order.
    """
    factors = [factorize(a) for a in arrays]
    if classes is None:
        names = sort_classes(list({v for uniq, _ in factors for v in uniq if v is not None}))
    else:
        names = [canonical(c) for c in classes]  # type: ignore[misc]
        if any(c is None for c in names):
            raise InvalidParameterError(f"classes: a class cannot be None or NaN, got {list(classes)!r}")
    index = {c: i for i, c in enumerate(names)}
    codes = []
    for uniq, inverse in factors:
        lookup = np.empty(len(uniq), dtype=np.int64)
        for j, v in enumerate(uniq):
            if v is None:
                lookup[j] = MISSING
            elif v in index:
                lookup[j] = index[v]
            else:
                raise DataError(f"label {v!r} is not one of the classes {names}")
        codes.append(lookup[inverse] if len(uniq) else np.empty(0, dtype=np.int64))
    return codes, names
