"""Time windows: parse "1h"/"15m"/seconds, bucket timestamps, group rows by window, hold per-window results.

Windows are aligned to multiples of their width since the Unix epoch (like Prometheus
range steps), so two processes, or two runs, cut the same windows. A window is
[start, start + width). Empty windows inside the requested range are kept (n = 0, NaN
values) so a gap in traffic shows as a gap, not as a silently shorter series.

Every "... per window" function (performance, CBPE, fairness) cuts its rows with `over_time`:
one stable sort of the window index groups the rows of all windows at once, O(n log n),
instead of one scan of every row per window, O(n x windows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, Self

import numpy as np

from aisre.errors import InvalidParameterError
from aisre.records import Signal

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_window(window: str | float | int | timedelta) -> float:
    """Window width in seconds from "90s", "15m", "1h", "1d", "1w", a number or a timedelta."""
    if isinstance(window, timedelta):
        seconds = window.total_seconds()
    elif isinstance(window, int | float) and not isinstance(window, bool):
        seconds = float(window)
    elif isinstance(window, str) and (m := _WINDOW.match(window)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise InvalidParameterError(
            f"window: expected seconds (a number), a timedelta or text like '15m', '1h', '1d', got {window!r}"
        )
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidParameterError(f"window: expected a positive duration, got {window!r}")
    return seconds


def window_index(
    ts: np.ndarray, width: float, start: float | None = None, end: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(window starts, index of each row's window or -1 when outside [start, end)).

    Without `start`/`end`, the range spans the first to the last timestamp.
    """
    ts = np.asarray(ts, dtype=np.float64)
    if ts.size == 0 and (start is None or end is None):
        return np.empty(0), np.empty(0, dtype=np.int64)
    lo = math.floor((np.nanmin(ts) if start is None else start) / width) * width
    if end is None:
        count = int((np.nanmax(ts) - lo) // width) + 1
    else:
        count = max(0, math.ceil((end - lo) / width))
    starts = lo + width * np.arange(count, dtype=np.float64)
    idx = np.floor((ts - lo) / width).astype(np.int64)
    outside = (idx < 0) | (idx >= count) | np.isnan(ts)
    if start is not None:
        outside |= ts < start
    if end is not None:
        outside |= ts >= end
    idx[outside] = -1
    return starts, idx


def window_rows(
    ts: np.ndarray, width: float, start: float | None = None, end: float | None = None
) -> list[tuple[float, float, np.ndarray]]:
    """(start, end, row indices) of each window in time order; indices in input order.

    One stable argsort of the window index, then the run of each window is a slice, so
    the rows of a window come out in the same order a boolean mask would give them.
    """
    starts, idx = window_index(ts, width, start, end)
    order = np.argsort(idx, kind="stable")  # rows outside every window (-1) sort first
    bounds = np.searchsorted(idx[order], np.arange(len(starts) + 1))
    return [(float(lo), float(lo + width), order[bounds[w] : bounds[w + 1]]) for w, lo in enumerate(starts)]


class Rows(Protocol):
    """Row-aligned data with timestamps that can pick rows by index (a `LabeledWindow`)."""

    @property
    def ts(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def select(self, rows: np.ndarray) -> Self: ...


def over_time(
    data: Rows,
    window: str | float | int | timedelta,
    report: Callable[[Any], WindowReport],
    start: float | None = None,
    end: float | None = None,
) -> OverTime:
    """`report(rows of the window)` for each window of `data` (empty windows too), as an `OverTime`."""
    width = parse_window(window)
    results = []
    for lo, hi, rows in window_rows(data.ts, width, start, end):
        part = data.select(rows)
        results.append(WindowResult(lo, hi, len(part), report(part)))
    return OverTime(width, results)


class WindowReport(Protocol):
    def row(self) -> dict[str, Any]: ...

    def signals(
        self,
        model: str,
        version: str,
        window_start: float | None = None,
        window_end: float | None = None,
    ) -> list[Signal]: ...


@dataclass(frozen=True, slots=True)
class WindowResult:
    """The report of one window [start, end) (epoch seconds) holding `n` rows."""

    start: float
    end: float
    n: int
    report: WindowReport

    def row(self) -> dict[str, Any]:
        return {"window_start": self.start, "window_end": self.end, "n": self.n, **self.report.row()}


@dataclass(frozen=True, slots=True)
class OverTime:
    """Per-window results in time order: one row per window, signals for all of them."""

    width_s: float
    windows: list[WindowResult]

    def __iter__(self) -> Iterator[WindowResult]:
        return iter(self.windows)

    def __len__(self) -> int:
        return len(self.windows)

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per window (`pandas.DataFrame(result.rows())` makes a table)."""
        return [w.row() for w in self.windows]

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())

    def signals(self, model: str, version: str) -> list[Signal]:
        return [s for w in self.windows for s in w.report.signals(model, version, w.start, w.end)]
