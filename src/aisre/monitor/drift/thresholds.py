"""Alert thresholds from the reference's own variability (NannyML 0.13's drift thresholds), or constant bands.

A distance such as Jensen-Shannon is never exactly 0 between two finite samples: how large it
gets by chance depends on the column and the window size. `StdThreshold` measures that: it
splits the reference into chunks the size of the analysis window, scores each chunk against
the whole reference, and alerts when the current window's statistic leaves
mean +- k * std of those chunk statistics. Sources (NannyML 0.13): nannyml/thresholds.py
(`StandardDeviationThreshold`, `calculate_threshold_values`), nannyml/drift/univariate/methods.py
(`Method.fit`, `Method.alert`), nannyml/chunk.py (`SizeBasedChunker`, `CountBasedChunker`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aisre.errors import DataError, InvalidParameterError

#: Below this many reference chunks a standard deviation says little (NannyML warns under 6).
MIN_CHUNKS = 2


class Threshold(ABC):
    """A rule giving (lower, upper) alert bounds; None means no bound on that side.

    The alert is strict, as NannyML's `Method.alert`: statistic < lower or statistic > upper.
    """

    #: Whether `bounds` needs the statistics of reference chunks.
    needs_chunks: bool = False

    @abstractmethod
    def bounds(self, chunk_statistics: np.ndarray) -> tuple[float | None, float | None]: ...

    def is_alert(self, statistic: float, lower: float | None, upper: float | None) -> bool:
        return (lower is not None and statistic < lower) or (upper is not None and statistic > upper)


@dataclass(frozen=True)
class ConstantThreshold(Threshold):
    """Fixed bounds, NannyML's `ConstantThreshold(lower, upper)`: alert when outside [lower, upper]."""

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value != value):
                raise InvalidParameterError(f"ConstantThreshold.{name}: expected a number or None, got {value!r}")
        if self.lower is None and self.upper is None:
            raise InvalidParameterError("ConstantThreshold: give lower, upper or both (neither would never alert)")
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise InvalidParameterError(f"ConstantThreshold: lower {self.lower} must be < upper {self.upper}")

    def bounds(self, chunk_statistics: np.ndarray) -> tuple[float | None, float | None]:
        return self.lower, self.upper


@dataclass(frozen=True)
class StdThreshold(Threshold):
    """mean +- k * std (population std, NaN chunks ignored) of the reference chunks' statistics.

    `k`: the upper multiplier; `lower_k`: the lower one, None for no lower bound (NannyML's
    univariate drift default, `StandardDeviationThreshold(std_lower_multiplier=None)`: a
    distance smaller than usual is not drift). A bound beyond the metric's valid range is
    clipped to it (NannyML: a lower bound <= 0 becomes 0 for a distance).
    """

    k: float | None = 3.0
    lower_k: float | None = None
    needs_chunks = True

    def __post_init__(self) -> None:
        for name in ("k", "lower_k"):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0
            if value is not None and bad:
                raise InvalidParameterError(f"StdThreshold.{name}: expected a number >= 0 or None, got {value!r}")
        if self.k is None and self.lower_k is None:
            raise InvalidParameterError("StdThreshold: give k, lower_k or both (neither would never alert)")

    def bounds(self, chunk_statistics: np.ndarray) -> tuple[float | None, float | None]:
        values = np.asarray(chunk_statistics, dtype=np.float64)
        if not np.isfinite(values).any():
            raise DataError("no reference chunk gave a statistic (all chunks empty?); use a constant threshold")
        mean, std = float(np.nanmean(values)), float(np.nanstd(values))
        lower = None if self.lower_k is None else mean - std * self.lower_k
        upper = None if self.k is None else mean + std * self.k
        return lower, upper


#: The string spelling of a data-derived threshold: `threshold="std"` is `StdThreshold()`.
NAMED = {"std": StdThreshold}


def parse(value: object, what: str = "threshold") -> Threshold | float | None:
    """A number or None passes through; "std" becomes StdThreshold(); a Threshold is kept."""
    if isinstance(value, str):
        if value not in NAMED:
            raise InvalidParameterError(f"{what}: expected a number, {list(NAMED)} or a Threshold, got {value!r}")
        return NAMED[value]()
    return value  # type: ignore[return-value]


def chunk_slices(n_rows: int, chunk_size: int | None = None, n_chunks: int | None = None) -> list[slice]:
    """Row slices of NannyML's SizeBasedChunker(incomplete="keep"), or CountBasedChunker for `n_chunks`.

    Chunks cover rows (missing values included) in order; a last, smaller chunk with the
    remainder is kept, as NannyML's default does. `n_chunks` means chunk_size = n_rows // n_chunks.
    """
    if n_chunks is not None:
        chunk_size = n_rows // n_chunks
    if chunk_size is None or chunk_size < 1:
        raise DataError(f"chunk size {chunk_size!r} for {n_rows} reference rows: expected >= 1 row per chunk")
    slices = [slice(i, i + chunk_size) for i in range(0, n_rows - chunk_size + 1, chunk_size)]
    if n_rows % chunk_size:
        slices.append(slice(chunk_size * (n_rows // chunk_size), n_rows))
    if len(slices) < MIN_CHUNKS:
        raise DataError(
            f"the reference ({n_rows} rows) gives {len(slices)} chunk of {chunk_size} rows; a threshold from "
            f"the reference's variability needs >= {MIN_CHUNKS}: pass a smaller chunk_size or n_chunks"
        )
    return slices


def clip(
    lower: float | None, upper: float | None, value_range: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """NannyML's `calculate_threshold_values`: a bound at or beyond the metric's limit becomes the limit."""
    low_limit, high_limit = value_range
    if low_limit is not None and lower is not None and lower <= low_limit:
        lower = low_limit
    if high_limit is not None and upper is not None and upper >= high_limit:
        upper = high_limit
    return lower, upper


def chunk_statistics(score: Callable[[np.ndarray], float], reference: np.ndarray, slices: list[slice]) -> np.ndarray:
    """`score(chunk)` for each reference chunk; a chunk that cannot be scored (no values) is NaN."""
    out = np.empty(len(slices))
    for i, part in enumerate(slices):
        try:
            out[i] = score(reference[part])
        except DataError:
            out[i] = math.nan
    return out
