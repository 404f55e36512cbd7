"""Stream windows for online drift: count or time, tumbling or sliding, built from mergeable panes.

    stream = OnlineDrift(WindowTest(reference_values, "ks"), CountWindows(500))
    for verdict in stream.update(values):          # every closed window
        if verdict.drift: ...

A window is the merge of `size / step` panes (tumbling: one pane), so a sliding window
never re-reads values: raw panes concatenate, profile panes merge (`profile.py`). Each
closed window is judged by a detector from `online.py`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.tabular.frame import normalise
from aisre.records import Signal

if TYPE_CHECKING:  # online.py imports this module; the detector contract is needed for types only
    from aisre.monitor.online.detectors import Detector


class RawValues:
    """A pane of raw values: appends arrays, merges by concatenation."""

    def __init__(self, parts: list[np.ndarray] | None = None) -> None:
        self.parts = parts or []

    def update(self, values: np.ndarray) -> RawValues:
        self.parts.append(values)
        return self

    def merge(self, other: RawValues) -> RawValues:
        return RawValues(self.parts + other.parts)

    @property
    def values(self) -> np.ndarray:
        if not self.parts:
            return np.empty(0)
        return np.concatenate(self.parts) if len(self.parts) > 1 else self.parts[0]

    @property
    def n(self) -> int:
        return sum(len(p) for p in self.parts)


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """The verdict on one closed window; `start`/`end` are epoch seconds."""

    index: int
    start: float
    end: float
    n: int
    detector: str
    statistic: float
    p_value: float | None
    threshold: float
    drift: bool
    details: dict[str, Any] = field(default_factory=dict)

    def signals(self, model: str, version: str, column: str | None = None, name: str = "online_drift") -> list[Signal]:
        labels = {"detector": self.detector, **({"column": column} if column else {})}
        threshold = self.threshold if math.isfinite(self.threshold) else None
        value = self.statistic if math.isfinite(self.statistic) else math.nan
        return [Signal(model, version, name, value, threshold, self.drift, labels, self.start, self.end)]


def _panes_per_window(size: float, step: float, what: str) -> int:
    ratio = size / step
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * max(1.0, ratio):
        raise InvalidParameterError(f"{what}: the window ({size}) must be a whole number of steps ({step})")
    return count


class CountWindows:
    """Windows of `size` values, closed every `step` values (step = size: tumbling)."""

    def __init__(self, size: int, step: int | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        if size < 1:
            raise InvalidParameterError(f"size: expected >= 1 values, got {size}")
        self.size, self.step = int(size), int(step or size)
        if not 1 <= self.step <= self.size:
            raise InvalidParameterError(f"step: expected 1..{size} values, got {step}")
        self.panes_per_window = _panes_per_window(self.size, self.step, "step")
        self.clock = clock


class TimeWindows:
    """Windows of `seconds`, closed every `step` seconds (step = seconds: tumbling).

    Panes are aligned to multiples of `step` since the Unix epoch. With a clock, "now" is
    `clock.now()` and values default to it; with `clock=None`, time is the data's own (the
    largest timestamp seen), for replaying a log. Values for a pane already closed are
    counted as late and dropped; windows with no values yield no verdict.
    """

    def __init__(self, seconds: float, step: float | None = None, clock: Clock | None = SYSTEM_CLOCK) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise InvalidParameterError(f"seconds: expected a positive duration, got {seconds!r}")
        self.seconds, self.step = float(seconds), float(step or seconds)
        if not 0 < self.step <= self.seconds:
            raise InvalidParameterError(f"step: expected (0, {seconds}] seconds, got {step!r}")
        self.panes_per_window = _panes_per_window(self.seconds, self.step, "step")
        self.clock = clock


class OnlineDrift:
    """Feeds a stream into windows and judges each closed window with a detector."""

    def __init__(self, detector: Detector, windows: CountWindows | TimeWindows) -> None:
        self.detector = detector
        self.windows = windows
        self.late = 0
        self._index = 0
        self._panes: deque[tuple[Any, float, float]] = deque(maxlen=windows.panes_per_window)
        self._open: Any = None
        self._open_count = 0
        self._open_since = 0.0
        self._timed: dict[int, Any] = {}
        self._next_end: int | None = None

    def update(self, values: Any, timestamps: Any = None) -> list[WindowVerdict]:
        """Add values (one column); returns the verdicts of the windows this closed."""
        values = normalise(np.asarray(values) if not isinstance(values, np.ndarray) else values, "values")
        if isinstance(self.windows, CountWindows):
            return self._update_count(values, self.windows)
        return self._update_time(values, timestamps)

    def tick(self) -> list[WindowVerdict]:
        """Close the time windows that have ended by now (call it when no values arrive)."""
        if isinstance(self.windows, CountWindows) or self.windows.clock is None:
            return []
        return self._close_until(self.windows.clock.now())

    # count windows
    def _update_count(self, values: np.ndarray, w: CountWindows) -> list[WindowVerdict]:
        out = []
        start = 0
        while start < values.size:
            if self._open is None:
                self._open, self._open_count, self._open_since = self.detector.new_pane(), 0, w.clock.now()
            take = min(w.step - self._open_count, values.size - start)
            self._open.update(values[start : start + take])
            self._open_count += take
            start += take
            if self._open_count == w.step:
                self._panes.append((self._open, self._open_since, w.clock.now()))
                self._open = None
                if len(self._panes) == w.panes_per_window:
                    panes = [p for p, _, _ in self._panes]
                    out.append(self._judge(panes, self._panes[0][1], self._panes[-1][2]))
        return out

    # time windows
    def _update_time(self, values: np.ndarray, timestamps: Any) -> list[WindowVerdict]:
        w = self.windows
        if timestamps is None:
            if w.clock is None:
                raise DataError("timestamps: required when TimeWindows has clock=None (event time)")
            ts = np.full(values.size, w.clock.now())
        else:
            ts = np.asarray(timestamps, dtype=np.float64)
            if ts.shape != values.shape:
                raise DataError(f"timestamps: expected one per value ({values.size}), got shape {ts.shape}")
        if values.size == 0:
            return self.tick()
        panes = np.floor(ts / w.step).astype(np.int64)
        if self._next_end is None:
            self._next_end = int(panes.min()) + w.panes_per_window - 1
        first_open = self._next_end - w.panes_per_window + 1
        late = panes < first_open
        self.late += int(late.sum())
        for pane in np.unique(panes[~late]).tolist():
            if pane not in self._timed:
                self._timed[pane] = self.detector.new_pane()
            self._timed[pane].update(values[panes == pane])
        now = w.clock.now() if w.clock is not None else float(ts.max())
        return self._close_until(now)

    def _close_until(self, now: float) -> list[WindowVerdict]:
        w = self.windows
        out: list[WindowVerdict] = []
        if self._next_end is None:
            return out
        p = w.panes_per_window
        while now >= (self._next_end + 1) * w.step:
            end = self._next_end
            members = [self._timed[i] for i in range(end - p + 1, end + 1) if i in self._timed]
            if members:
                out.append(self._judge(members, (end - p + 1) * w.step, (end + 1) * w.step))
                self._next_end = end + 1
            else:
                later = [i for i in self._timed if i > end]
                self._next_end = min(later) if later else max(end + 1, math.floor(now / w.step))
            for i in [i for i in self._timed if i < self._next_end - p + 1]:
                del self._timed[i]
        return out

    def _judge(self, panes: list[Any], start: float, end: float) -> WindowVerdict:
        window = panes[0]
        for pane in panes[1:]:
            window = window.merge(pane)
        outcome = self.detector.test(window)
        n = int(window.n) if isinstance(window, RawValues) else int(window.counts.sum())
        verdict = WindowVerdict(
            self._index,
            start,
            end,
            n,
            self.detector.name,
            outcome.statistic,
            outcome.p_value,
            outcome.threshold,
            outcome.drift,
            outcome.details,
        )
        self._index += 1
        return verdict
