"""The dashboard API's query parameters (`since`, `until`, `step`...) parsed once, with the parameter named on error."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from aisre.errors import InvalidParameterError

#: A series never has more points than this when `step` is not given.
MAX_POINTS = 720
DEFAULT_SINCE_S = 86_400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
#: Epoch numbers above this are taken as seconds since 1970 rather than a bare count of seconds.
_EPOCH_FLOOR = 100_000_000.0


class BadParameter(InvalidParameterError):
    """A query parameter the API cannot use; `param` names it (answered as 400)."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(f"{param}: {message}")


class UnknownItem(InvalidParameterError, LookupError):
    """A path names a model, version, SLO, incident or monitor that does not exist (answered as 404)."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


def duration_s(text: str, param: str) -> float:
    """`30d`, `5m`, `90` (seconds) -> seconds; BadParameter naming `param` otherwise."""
    m = _DURATION.match(text or "")
    if m is None:
        raise BadParameter(param, f"expected a duration such as 5m, 1h or 30d (or seconds), got {text!r}")
    value = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    if not math.isfinite(value) or value <= 0:
        raise BadParameter(param, f"expected a positive duration, got {text!r}")
    return value


def time_point(text: str, param: str, now: float) -> float:
    """`24h` (back from now), an epoch number, or an ISO-8601 time -> epoch seconds."""
    text = (text or "").strip()
    if text == "now":
        return now
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and number >= _EPOCH_FLOOR:
        return number
    if _DURATION.match(text):
        return now - duration_s(text, param)
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(param, f"expected a duration such as 24h, an epoch or an ISO time, got {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


@dataclass(frozen=True)
class TimeRange:
    """[since, until) in epoch seconds, cut in `step_s` buckets starting at `first` (a whole minute)."""

    since: float
    until: float
    step_s: int
    first: float

    @property
    def n(self) -> int:
        return max(1, math.ceil((self.until - self.first) / self.step_s))

    @property
    def starts(self) -> list[float]:
        return [self.first + k * self.step_s for k in range(self.n)]


def time_range(
    since: str | None,
    until: str | None,
    step: str | None,
    now: float,
    max_points: int = MAX_POINTS,
    max_span_s: float | None = None,
) -> TimeRange:
    """Parse `since`/`until`/`step` (defaults 24h, now, <= `max_points` whole minutes) on the clock's `now`;
    a range longer than `max_span_s` is refused (naming `since`)."""
    start = now - DEFAULT_SINCE_S if since is None else time_point(since, "since", now)
    end = now if until is None else time_point(until, "until", now)
    if end <= start:
        raise BadParameter("until", f"must be after since ({start:.0f}), got {end:.0f}")
    if max_span_s is not None and end - start > max_span_s:
        raise BadParameter(
            "since", f"at most {max_span_s / 86_400:.0f} days before until, got {(end - start) / 86_400:.0f}"
        )
    if step is None:
        step_s = max(60, math.ceil((end - start) / max_points / 60) * 60)
        while math.ceil((end - math.floor(start / step_s) * step_s) / step_s) > max_points:
            step_s += 60  # alignment added a point
    else:
        raw = duration_s(step, "step")
        if raw < 60 or raw % 60:
            raise BadParameter("step", f"expected a whole number of minutes (60, 5m, 1h...), got {step!r}")
        step_s = int(raw)
        if (end - start) / step_s > 20 * max_points:
            raise BadParameter(
                "step",
                f"{step!r} gives {math.ceil((end - start) / step_s)} points, at most {20 * max_points} allowed: "
                "use a larger one",
            )
    first = math.floor(start / step_s) * step_s  # aligned, so refreshes keep the same buckets
    return TimeRange(start, end, step_s, float(first))


def choice(value: str | None, param: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    if value is None:
        return default
    if value not in allowed:
        raise BadParameter(param, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def whole_number(value: object, param: str, what: str) -> int:
    """A path's number (an incident id): BadParameter unless a whole number SQLite can hold."""
    try:
        number = int(str(value))
    except ValueError:
        raise BadParameter(param, f"expected {what}, got {value!r}") from None
    if not -(2**63) <= number < 2**63:
        raise BadParameter(param, f"expected {what}, got {value!r} (too large)")
    return number


def positive_int(value: str | None, param: str, default: int, maximum: int = 10_000) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= maximum:
        raise BadParameter(param, f"expected a whole number from 1 to {maximum}, got {value!r}")
    return number
