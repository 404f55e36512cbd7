"""Profiles: mergeable summaries of a column over a window.

A numeric profile counts values over fixed bin edges taken from the reference, with one
open bin below the reference minimum and one above its maximum, and keeps count,
missing, infinite, min/max and mean/variance (merged with Chan et al.'s parallel
formula); optionally a KLL quantile sketch (`datasketches`). A categorical profile counts
a fixed vocabulary taken from the reference (its `cap` most frequent categories) plus one
"other" bucket for everything else. Because the bins and vocabulary are fixed up front,
`a.merge(b)` equals the profile of the union exactly (moments up to float rounding):
windows, processes and machines can profile separately and combine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisre.errors import InvalidParameterError
from aisre.monitor.tabular.frame import DataError, is_numeric

try:  # optional quantile sketch
    from datasketches import kll_doubles_sketch
except ImportError:  # pragma: no cover - exercised only without the extra
    kll_doubles_sketch = None

OTHER = "__other__"
#: numpy's bin-count rules (np.histogram_bin_edges), accepted as `bins`.
BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")
#: More bins than this makes a profile larger than the data it summarises.
MAX_BINS = 10_000


def check_bins(bins: int | str) -> None:
    """Refuse a `bins` that numpy would fail on later (or that would make a huge profile), naming it."""
    expected = (
        f"bins: expected a whole number from 1 to {MAX_BINS}, one of {list(BIN_RULES)}, "
        f"or 'quantile:N' (N from 1 to {MAX_BINS})"
    )
    if isinstance(bins, str):
        count = bins.removeprefix("quantile:") if bins.startswith("quantile:") else None
        if count is None and bins in BIN_RULES:
            return
        if count is not None and count.isdigit() and 1 <= int(count) <= MAX_BINS:
            return
        raise InvalidParameterError(f"{expected}, got {bins!r}")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 1 <= bins <= MAX_BINS:
        raise InvalidParameterError(f"{expected}, got {bins!r}")


def reference_edges(values: np.ndarray, bins: int | str = "doane") -> np.ndarray:
    """Bin edges from the finite reference values: an int (equal width), a numpy rule
    ('doane', 'sturges', 'fd', 'auto', ...) or 'quantile:N' (N equal-frequency bins)."""
    check_bins(bins)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([0.0])
    if isinstance(bins, str) and bins.startswith("quantile:"):
        n = int(bins.split(":", 1)[1])
        with np.errstate(all="ignore"):
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, n + 1)))
        return edges if np.isfinite(edges).all() else _ordinal_edges(finite, n)
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        return np.array([lo])
    with np.errstate(all="ignore"):
        try:
            edges = np.histogram_bin_edges(finite, bins=bins)
        except ValueError:  # numpy's own overflow check ("Too many bins" from a NaN width)
            edges = np.array([np.nan])
    return edges if np.isfinite(edges).all() else _ordinal_edges(finite, bins if isinstance(bins, int) else 10)


def _ordinal_edges(finite: np.ndarray, n: int) -> np.ndarray:
    """Equal-frequency edges picked among the values themselves: no arithmetic, so no overflow for
    values near the float64 limit, where the width-based rules compute inf - -inf."""
    return np.unique(np.quantile(finite, np.linspace(0, 1, n + 1), method="inverted_cdf"))


@dataclass
class NumericProfile:
    """Counts over the reference's bins plus moments of one window of a numeric column.

    `n` counts finite values (the moments and the sketch are theirs); `missing` counts NaN and
    `infinite` counts +-inf, apart from each other. Infinities are also counted in the open
    outer bins (-inf below the first edge, +inf above the last), where they belong by order.
    """

    edges: np.ndarray
    counts: np.ndarray = None  # type: ignore[assignment]  # len(edges) + 1 bins
    n: int = 0
    missing: int = 0
    infinite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    sketch: Any = None
    kind: str = field(default="numeric", init=False)

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        if self.counts is None:
            self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)

    @classmethod
    def empty_like(cls, other: NumericProfile, quantiles: bool | None = None) -> NumericProfile:
        with_sketch = other.sketch is not None if quantiles is None else quantiles
        return cls(other.edges.copy(), sketch=_new_sketch() if with_sketch else None)

    @property
    def variance(self) -> float:
        """Population variance of the finite values (ddof=0)."""
        return self.m2 / self.n if self.n else math.nan

    def update(self, values: np.ndarray) -> NumericProfile:
        values = np.asarray(values, dtype=np.float64)
        nan = np.isnan(values)
        self.missing += int(nan.sum())
        present = values[~nan]
        self.counts += _bin_counts(self.edges, present)
        finite = present[np.isfinite(present)]
        self.infinite += present.size - finite.size
        if finite.size:
            with np.errstate(over="ignore", invalid="ignore"):  # values near 1e308: the moments overflow to inf
                batch = NumericProfile(
                    self.edges,
                    counts=np.zeros_like(self.counts),
                    n=finite.size,
                    mean=float(finite.mean()),
                    min=float(finite.min()),
                    max=float(finite.max()),
                )
                batch.m2 = float(((finite - batch.mean) ** 2).sum())
                self._merge_moments(batch)
            if self.sketch is not None:
                self.sketch.update(finite)
        return self

    def merge(self, other: NumericProfile) -> NumericProfile:
        """A new profile of both windows (edges must be the same)."""
        if not np.array_equal(self.edges, other.edges):
            raise DataError("cannot merge numeric profiles with different bin edges")
        out = NumericProfile(
            self.edges.copy(),
            counts=self.counts + other.counts,
            n=self.n,
            missing=self.missing + other.missing,
            infinite=self.infinite + other.infinite,
            mean=self.mean,
            m2=self.m2,
            min=self.min,
            max=self.max,
        )
        out._merge_moments(other)
        if self.sketch is not None or other.sketch is not None:
            out.sketch = _new_sketch()
            for s in (self.sketch, other.sketch):
                if s is not None:
                    out.sketch.merge(s)
        return out

    def _merge_moments(self, b: NumericProfile) -> None:
        if b.n == 0:
            return
        n = self.n + b.n
        delta = b.mean - self.mean
        self.mean += delta * b.n / n
        self.m2 += b.m2 + delta * delta * self.n * b.n / n
        self.n = n
        self.min = min(self.min, b.min)
        self.max = max(self.max, b.max)

    def quantile(self, q: float) -> float:
        if self.sketch is None:
            raise DataError("this profile keeps no quantile sketch (profile with quantiles=True)")
        return float(self.sketch.get_quantile(q)) if self.n else math.nan

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": "numeric",
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "n": self.n,
            "missing": self.missing,
            "infinite": self.infinite,
            "mean": _json_float(self.mean),  # finite unless the values overflow float64
            "m2": _json_float(self.m2),
            "min": _json_float(self.min),
            "max": _json_float(self.max),
        }
        if self.sketch is not None:
            out["sketch"] = self.sketch.serialize().hex()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        sketch = None
        if d.get("sketch") and kll_doubles_sketch is not None:
            sketch = kll_doubles_sketch.deserialize(bytes.fromhex(d["sketch"]))
        return cls(
            np.asarray(d["edges"], dtype=np.float64),
            np.asarray(d["counts"], dtype=np.int64),
            d["n"],
            d["missing"],
            d["infinite"],
            _from_json_float(d["mean"]),
            _from_json_float(d["m2"]),
            _from_json_float(d["min"]),
            _from_json_float(d["max"]),
            sketch,
        )


@dataclass
class CategoricalProfile:
    vocabulary: tuple[str, ...]
    counts: np.ndarray = None  # type: ignore[assignment]  # len(vocabulary) + 1; last = other
    missing: int = 0
    kind: str = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        self.vocabulary = tuple(self.vocabulary)
        self._index = {c: i for i, c in enumerate(self.vocabulary)}
        if self.counts is None:
            self.counts = np.zeros(len(self.vocabulary) + 1, dtype=np.int64)

    @classmethod
    def empty_like(cls, other: CategoricalProfile) -> CategoricalProfile:
        return cls(other.vocabulary)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def other(self) -> int:
        return int(self.counts[-1])

    def update(self, values: np.ndarray) -> CategoricalProfile:
        for value, count in category_counts(values).items():
            if value is None:
                self.missing += count
            else:
                self.counts[self._index.get(value, len(self.vocabulary))] += count
        return self

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        if self.vocabulary != other.vocabulary:
            raise DataError("cannot merge categorical profiles with different vocabularies")
        return CategoricalProfile(self.vocabulary, self.counts + other.counts, self.missing + other.missing)

    def shares(self) -> dict[str, float]:
        total = self.n
        names = [*self.vocabulary, OTHER]
        return {c: (int(k) / total if total else 0.0) for c, k in zip(names, self.counts, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "vocabulary": list(self.vocabulary),
            "counts": self.counts.tolist(),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        return cls(tuple(d["vocabulary"]), np.asarray(d["counts"], dtype=np.int64), d["missing"])


ColumnProfile = NumericProfile | CategoricalProfile


def category_counts(values: np.ndarray) -> dict[str | None, int]:
    """Counts per category (None = missing), hashed in C by pyarrow."""
    if len(values) == 0:
        return {}
    arrow = pa.array(values, type=pa.string(), from_pandas=True)
    counted = pc.value_counts(arrow)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def fit_profile(
    values: np.ndarray, bins: int | str = "doane", category_cap: int = 50, quantiles: bool = False
) -> ColumnProfile:
    """Profile a reference column: choose its bins (or vocabulary) and count it."""
    check_bins(bins)
    if isinstance(category_cap, bool) or not isinstance(category_cap, int | np.integer) or category_cap < 1:
        raise InvalidParameterError(f"category_cap: expected a whole number >= 1, got {category_cap!r}")
    if is_numeric(values):
        sketch = _new_sketch() if quantiles else None
        return NumericProfile(reference_edges(values, bins), sketch=sketch).update(values)
    counts = category_counts(values)
    present = {c: n for c, n in counts.items() if c is not None}  # missing values are counted apart
    ranked = sorted(present.items(), key=lambda kv: (-kv[1], kv[0]))
    vocabulary = tuple(c for c, _ in ranked[:category_cap])
    return CategoricalProfile(vocabulary).update(values)


def _bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts over [-inf, e0), [e0, e1), ..., [e_{k-1}, e_k], (e_k, +inf)."""
    idx = np.searchsorted(edges, values, side="right")
    if len(edges) > 1:
        idx[values == edges[-1]] = len(edges) - 1  # the reference max closes the last inner bin
    return np.bincount(idx, minlength=len(edges) + 1)


def _new_sketch() -> Any:
    if kll_doubles_sketch is None:
        raise DataError("quantile sketches need the optional package: pip install 'aisre[sketch]'")
    return kll_doubles_sketch(200)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _from_json_float(x: float | str) -> float:
    return float(x)
