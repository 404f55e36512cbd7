"""Split one normalised column into the values a drift test sees and counts of what was dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from aisre.monitor.drift.base import Kind
from aisre.monitor.tabular.frame import DataError, dictionary_codes, encoding_of


@dataclass(frozen=True, slots=True)
class Values:
    """The non-missing values of one column, with what was dropped.

    `values` is float64 with only finite numbers (numeric) or an object array of str
    (categorical). `n_missing` counts NaN/None; `n_infinite` counts +-inf, which are
    dropped too (as Evidently does) because no distance or rank test is defined on them;
    `drift()` then applies its `infinite=` policy to their counts (`aisre.monitor.drift.infinite`).
    Categorical values also come dictionary-encoded: `categories[codes]` equals `values`.
    """

    values: np.ndarray
    kind: Kind
    n_total: int
    n_missing: int
    n_infinite: int = 0
    categories: np.ndarray | None = field(default=None, repr=False, compare=False)
    codes: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.values)


def kind_of(values: np.ndarray) -> Kind:
    return "numeric" if values.dtype.kind in "fiu" else "categorical"


def prepare(values: np.ndarray, role: str) -> Values:
    """Drop missing (and infinite) values; raise `DataError` if the values are not normalised.

    Messages name the role ("reference"/"current"); `drift()` adds the column name.
    """
    encoding = encoding_of(values)
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{role}: expected a 1-D array, got shape {values.shape}")
    if values.dtype.kind in "iu":
        values = values.astype(np.float64)
    if values.dtype.kind == "f":
        values = values.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        if finite.all():
            return Values(values, "numeric", len(values), 0, 0)
        n_nan = int(np.isnan(values).sum())
        kept = values[finite]
        return Values(kept, "numeric", len(values), n_nan, len(values) - len(kept) - n_nan)
    if values.dtype.kind in "OUS":
        categories, codes = encoding if encoding is not None else _encode(values, role)
        present = codes >= 0
        n_missing = len(codes) - int(np.count_nonzero(present))
        if n_missing == 0:
            return Values(values.astype(object, copy=False), "categorical", len(values), 0, 0, categories, codes)
        kept = values[present].astype(object, copy=False)
        return Values(kept, "categorical", len(values), n_missing, 0, categories, codes[present])
    raise DataError(
        f"{role}: expected float64 or str values (use aisre.monitor.tabular.frame.normalise), got dtype {values.dtype}"
    )


def _encode(values: np.ndarray, role: str) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encode text that did not arrive encoded (C speed, through pyarrow)."""
    try:
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{role}: expected text values (str or None) in a categorical column; {exc}") from None
    return dictionary_codes(text)


def category_counts(values: Values) -> tuple[list, np.ndarray]:
    """Distinct values and their counts, in order of first appearance for text (a bincount of codes)."""
    if values.kind == "numeric":
        labels, counts = np.unique(values.values, return_counts=True)
        return labels.tolist(), counts.astype(np.int64)
    if values.codes is None or values.categories is None:
        raise DataError("categorical values without their encoding; build them with prepare()")
    counts = np.bincount(values.codes, minlength=len(values.categories)).astype(np.int64)
    seen = counts > 0
    return values.categories[seen].tolist(), counts[seen]


def align(
    ref_labels: list, ref_counts: np.ndarray, cur_labels: list, cur_counts: np.ndarray
) -> tuple[list, np.ndarray, np.ndarray]:
    """Counts of both windows over the union of categories: reference order, then unseen ones."""
    index = {label: i for i, label in enumerate(ref_labels)}
    labels = list(ref_labels)
    positions = np.empty(len(cur_labels), dtype=np.int64)
    for j, label in enumerate(cur_labels):  # one step per distinct category, not per row
        i = index.get(label)
        if i is None:
            i = index[label] = len(labels)
            labels.append(label)
        positions[j] = i
    ref = np.zeros(len(labels), dtype=np.int64)
    ref[: len(ref_counts)] = ref_counts
    cur = np.zeros(len(labels), dtype=np.int64)
    cur[positions] = cur_counts
    return labels, ref, cur


def count_distinct_upto(arrays: list[np.ndarray], limit: int) -> int:
    """Number of distinct values over `arrays`, exact up to `limit`; any larger count returns limit + 1.

    A sample decides most continuous columns at once; otherwise a membership pass over the
    few distinct values found (np.unique over millions of values would cost a full sort).
    """
    sample = np.concatenate([a[:2048] for a in arrays])
    if sample.dtype.kind == "f":
        found = np.unique(sample)
    else:
        found = np.array(sorted(set(sample.tolist())), dtype=object)
    if len(found) > limit:
        return limit + 1
    rest = [a[2048:] for a in arrays if len(a) > 2048]
    if not rest:
        return len(found)
    if sample.dtype.kind == "f":
        others = [r[~np.isin(r, found)] for r in rest]
    else:
        known = set(found.tolist())
        others = [np.array([v for v in set(r.tolist()) if v not in known], dtype=object) for r in rest]
    extra = [o for o in others if len(o)]
    if not extra:
        return len(found)
    return len(found) + count_distinct_upto(extra, limit - len(found))


def summary(ref: Values, cur: Values) -> dict:
    """The counts every result carries in `details`."""
    out: dict[str, Any] = {
        "n_reference": ref.n,
        "n_current": cur.n,
        "missing_reference": ref.n_missing,
        "missing_current": cur.n_missing,
    }
    if ref.n_infinite or cur.n_infinite:
        out["infinite_reference"] = ref.n_infinite
        out["infinite_current"] = cur.n_infinite
        out.setdefault("notes", []).append("infinite values were excluded from the test (counted in infinite_*)")
    return out


def require_values(values: Values, role: str, minimum: int = 1) -> None:
    if values.n < minimum:
        what = "no" if values.n == 0 else f"only {values.n}"
        raise DataError(
            f"{role} has {what} non-missing values "
            f"({values.n_total} rows, {values.n_missing} missing, {values.n_infinite} infinite); "
            f"need at least {minimum}"
        )


def count_present(values: np.ndarray) -> int:
    """Non-missing (and, for numbers, finite) values, without building the cleaned array."""
    encoding = encoding_of(values)
    if encoding is not None:
        return int(np.count_nonzero(encoding[1] >= 0))
    if values.dtype.kind == "f":
        return int(np.count_nonzero(np.isfinite(values)))
    if values.dtype.kind in "iu":
        return len(values)
    return len(values) - int(np.count_nonzero(np.equal(values, np.array(None))))


def current_values(reference: Values, current: np.ndarray, minimum: int = 1) -> Values:
    """The current window prepared like the reference: the same kind (or empty), enough values."""
    cur = prepare(current, "current")
    if cur.kind != reference.kind and cur.n:
        raise DataError(f"reference is {reference.kind} but current is {cur.kind}")
    require_values(cur, "current", minimum)
    return cur
