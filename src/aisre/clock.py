"""Injectable time: the real clock in production, a manual one in tests and simulations."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """A monotonic time in seconds, for measuring durations."""
        ...


class SystemClock:
    """The machine's clocks."""

    now = staticmethod(time.time)
    monotonic = staticmethod(time.perf_counter)


class ManualClock:
    """A clock that only moves when told to: lets a month of traffic run in a second."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        self._now += seconds
        self._mono += seconds


SYSTEM_CLOCK = SystemClock()
