"""Error budgets from good/total counts: SLI, budget consumed and remaining, burn rates, time to exhaustion.

The numbers are Sloth's recording rules computed in numpy, so that the embedded evaluator and
the Prometheus rules written by `aisre.slo.rules` agree on the same traffic:

- error ratio over a window w:   ``slo:sli_error:ratio_rate<w> = bad(w) / total(w)``
- error budget:                  ``slo:error_budget:ratio = 1 - objective``
- burn rate over w:              ``error_ratio(w) / error_budget``  (1 spends exactly the budget
  over the period; SRE workbook ch. 5, "Alerting on SLOs", table 5-4)
- period burn rate:              ``slo:period_burn_rate:ratio = error_ratio(period) / error_budget``
- budget remaining:              ``slo:period_error_budget_remaining:ratio = 1 - period burn rate``

A window with no events has no ratio in Prometheus (0/0 is NaN, which compares false), so no
alert fires; here its burn rate is 0 for the same reason.

Timeslices budgeting uses the same formulas on a series with one entry per slice (good 1 or
0, total 1): every slice is an event (see docs/decisions.md, "one budget semantics").

References: Google SRE workbook, chapter 5 (https://sre.google/workbook/alerting-on-slos/);
Sloth's SLI recording rules (https://sloth.dev/introduction/ , internal/prometheus/recording_rules.go).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aisre.config.slo import AlertWindow, SLOConfig, parse_duration
from aisre.errors import InvalidParameterError

#: The window whose burn rate predicts when the budget runs out (the fast page window).
CURRENT_WINDOW_S = 3600.0
_EPS = 1e-9  # tolerance when a window edge falls on a bucket edge despite float rounding


@dataclass(frozen=True)
class MinuteSeries:
    """Good and total counts per bucket, bucket i covering [start_s + i*step_s, start_s + (i+1)*step_s).

    A bucket is a minute for events budgeting (what the writer pre-aggregates) and a timeslice
    for timeslices budgeting (`from_slices`). Times are Unix seconds, as `Clock.now()` returns.
    """

    start_s: float
    good: npt.NDArray[np.float64]
    total: npt.NDArray[np.float64]
    step_s: float = 60.0
    _cum_good: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _cum_total: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        good = np.asarray(self.good, dtype=np.float64)
        total = np.asarray(self.total, dtype=np.float64)
        if good.ndim != 1 or good.shape != total.shape:
            raise InvalidParameterError(
                f"good and total: expected two 1-d arrays of one length, got {good.shape} and {total.shape}"
            )
        if self.step_s <= 0:
            raise InvalidParameterError(f"step_s: expected a positive number of seconds, got {self.step_s}")
        if np.any(good < 0) or np.any(good > total):
            raise InvalidParameterError("good: expected 0 <= good <= total in every bucket")
        object.__setattr__(self, "good", good)
        object.__setattr__(self, "total", total)
        # Prefix sums make any window's count two lookups, so 30 days of minutes evaluate in microseconds.
        object.__setattr__(self, "_cum_good", np.concatenate(([0.0], np.cumsum(good))))
        object.__setattr__(self, "_cum_total", np.concatenate(([0.0], np.cumsum(total))))

    @classmethod
    def from_slices(cls, start_s: float, good: npt.ArrayLike, step_s: float) -> MinuteSeries:
        """One entry per timeslice, True (or 1) when the slice was good: each slice is one event."""
        ok = np.asarray(good, dtype=bool).astype(np.float64)
        return cls(start_s, ok, np.ones_like(ok), step_s)

    @property
    def end_s(self) -> float:
        """The end of the last bucket."""
        return self.start_s + len(self.total) * self.step_s

    def counts(self, end_s: float, window_s: float) -> tuple[float, float]:
        """(good, total) over the complete buckets of the window ending at `end_s`.

        A bucket still open at `end_s` is left out, as a Prometheus rate leaves out samples not yet
        scraped. A window of a whole number of buckets holds that many: the last complete ones (so
        a window read between bucket edges is not one bucket short); another window holds the
        buckets that lie entirely inside (end_s - window_s, end_s].
        """
        n = len(self.total)
        hi = int(math.floor((end_s - self.start_s) / self.step_s + _EPS))
        buckets = window_s / self.step_s
        if abs(buckets - round(buckets)) < 1e-9 and buckets >= 1:
            # A whole number of buckets: the last `buckets` complete ones, wherever `end_s` falls in the
            # open bucket (a 1m window read at 12:00:30 is 11:59-12:00, not empty).
            lo = hi - int(round(buckets))
        else:
            lo = int(math.ceil((end_s - window_s - self.start_s) / self.step_s - _EPS))
        hi, lo = min(max(hi, 0), n), min(max(lo, 0), n)
        if hi <= lo:
            return 0.0, 0.0
        return float(self._cum_good[hi] - self._cum_good[lo]), float(self._cum_total[hi] - self._cum_total[lo])


def error_ratio(series: MinuteSeries, end_s: float, window_s: float) -> float:
    """bad / total over the window (Sloth's `slo:sli_error:ratio_rate<w>`); 0 when it holds no events."""
    good, total = series.counts(end_s, window_s)
    return 0.0 if total == 0 else (total - good) / total


def burn_rate(slo: SLOConfig, series: MinuteSeries, end_s: float, window_s: float) -> float:
    """How fast the window spends the budget: error_ratio(w) / (1 - objective).

    1 spends exactly the period's budget over the period; 14.4 spends 2% of a 30-day budget in an
    hour (SRE workbook ch. 5). 0 for a window with no events (no ratio, so no alert).
    """
    return error_ratio(series, end_s, window_s) / slo.error_budget


@dataclass(frozen=True)
class BudgetStatus:
    """Where one SLO's budget stands at `at_s`. Fractions are of the budget (1.0 = all of it)."""

    slo: str
    at_s: float
    objective: float
    good: float
    total: float
    sli: float | None
    """good / total over the period; None when the period holds no events."""
    error_budget: float
    """1 - objective: the share of events (or slices) that may be bad."""
    period_burn_rate: float
    consumed: float
    """Share of the budget spent = period burn rate; above 1 when overspent."""
    remaining: float
    """1 - consumed; negative when overspent (as Sloth's remaining ratio)."""
    current_burn_rate: float
    """Burn rate over the last `CURRENT_WINDOW_S` (1h)."""
    time_to_exhaustion_s: float
    """Seconds until `remaining` reaches 0 at the current burn rate; inf when not burning, 0 if spent."""

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0


def time_to_exhaustion(remaining: float, current_burn_rate: float, period_s: float) -> float:
    """Seconds left at a constant burn rate b: remaining x period / b.

    Why: burn rate 1 spends the whole budget over one period, so b spends b / period of it per second.
    """
    if remaining <= 0:
        return 0.0
    if current_burn_rate <= 0:
        return math.inf
    return remaining * period_s / current_burn_rate


def budget_status(
    slo: SLOConfig, series: MinuteSeries, at_s: float, current_window_s: float = CURRENT_WINDOW_S
) -> BudgetStatus:
    """The SLO's budget at `at_s` over its rolling period (see the module docstring for formulas)."""
    good, total = series.counts(at_s, slo.period_s)
    period_rate = 0.0 if total == 0 else (total - good) / total / slo.error_budget
    current = burn_rate(slo, series, at_s, current_window_s)
    remaining = 1.0 - period_rate
    return BudgetStatus(
        slo=slo.name,
        at_s=at_s,
        objective=slo.objective,
        good=good,
        total=total,
        sli=None if total == 0 else good / total,
        error_budget=slo.error_budget,
        period_burn_rate=period_rate,
        consumed=period_rate,
        remaining=remaining,
        current_burn_rate=current,
        time_to_exhaustion_s=time_to_exhaustion(remaining, current, slo.period_s),
    )


def alert_factor(slo: SLOConfig, window: AlertWindow) -> float:
    """The burn rate the window alerts at: `burn_rate`, else budget_percent/100 x period / long."""
    return period_alert_factor(window, slo.period_s)


def period_alert_factor(window: AlertWindow, period_s: float) -> float:
    """`alert_factor` for a period given in seconds (an SLO read from OpenSLO has no SLOConfig)."""
    if window.burn_rate is not None:
        return window.burn_rate
    return window.budget_percent / 100.0 * period_s / parse_duration(window.long)
