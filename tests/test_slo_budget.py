"""Error budget numbers of aisre.slo against hand-computed values (SRE workbook ch. 5, Sloth's rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aisre.config.slo import SLOConfig
from aisre.errors import InvalidParameterError
from aisre.slo import MinuteSeries, budget_status, burn_rate, error_ratio, time_to_exhaustion

HOUR = 3600.0
DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, ManualClock's default start


def availability(objective: float = 0.999, period: str = "30d") -> SLOConfig:
    return SLOConfig(name="api", model="m", objective=objective, period=period, sli={"kind": "availability"})


def minutes(bad_per_minute: list[float] | np.ndarray, total: float = 10_000.0) -> MinuteSeries:
    bad = np.asarray(bad_per_minute, dtype=float)
    return MinuteSeries(T0, good=total - bad, total=np.full(len(bad), total))


def test_an_hour_of_total_failure_burns_a_999_budget_1000_times_too_fast() -> None:
    series = minutes(np.full(60, 10_000.0))
    slo = availability()
    assert error_ratio(series, T0 + HOUR, HOUR) == 1.0
    assert burn_rate(slo, series, T0 + HOUR, HOUR) == pytest.approx(1000.0)


def test_burn_rate_is_error_ratio_over_the_budget_ratio() -> None:
    # 144 bad of 10,000 each minute: error ratio 0.0144, budget 0.001 -> 14.4 (the workbook's page factor)
    series = minutes(np.full(120, 144.0))
    assert burn_rate(availability(), series, T0 + 2 * HOUR, HOUR) == pytest.approx(14.4)
    # the same traffic against a 99% objective burns 1.44x
    assert burn_rate(availability(0.99), series, T0 + 2 * HOUR, HOUR) == pytest.approx(1.44)


def test_a_window_counts_the_last_complete_buckets_wherever_it_ends() -> None:
    series = minutes([0, 0, 10_000, 0, 0])  # the third minute failed entirely
    assert series.counts(T0 + 3 * 60, 60) == (0.0, 10_000.0)  # minute [2,3): all bad
    assert series.counts(T0 + 3 * 60 - 1, 60) == (10_000.0, 10_000.0)  # minute 2 still open: minute 1
    assert series.counts(T0 + 3 * 60 - 1, 120) == (20_000.0, 20_000.0)  # minutes 0 and 1
    assert series.counts(T0 + 3 * 60 - 1, 90) == (0.0, 0.0)  # not whole minutes: only buckets inside it (none)
    assert series.counts(T0 + 5 * 60, 120) == (20_000.0, 20_000.0)  # minutes 3 and 4 only
    assert error_ratio(series, T0 + 5 * 60, 5 * 60) == pytest.approx(0.2)


def test_window_without_events_burns_nothing() -> None:
    series = MinuteSeries(T0, good=np.zeros(60), total=np.zeros(60))
    assert burn_rate(availability(), series, T0 + HOUR, HOUR) == 0.0
    assert burn_rate(availability(), minutes([10_000.0]), T0 - HOUR, HOUR) == 0.0  # before the series
    status = budget_status(availability(), series, T0 + HOUR)
    assert status.sli is None and status.consumed == 0.0 and status.remaining == 1.0
    assert status.time_to_exhaustion_s == math.inf


def test_budget_status_after_one_bad_hour_in_a_day() -> None:
    # one good day then one hour at 14.4x: period error ratio 0.0144 x 60 / 1500 = 0.000576
    bad = np.concatenate([np.zeros(24 * 60), np.full(60, 144.0)])
    status = budget_status(availability(), minutes(bad), T0 + 25 * HOUR)
    assert status.total == 25 * 60 * 10_000
    assert status.sli == pytest.approx(1 - 0.000576)
    assert status.error_budget == pytest.approx(0.001)
    assert status.period_burn_rate == pytest.approx(0.576)
    assert status.consumed == pytest.approx(0.576)
    assert status.remaining == pytest.approx(0.424)
    assert status.current_burn_rate == pytest.approx(14.4)
    # 0.424 of the budget left, spent at 14.4 / 720h per hour: 0.424 x 720h / 14.4 = 21.2 hours
    assert status.time_to_exhaustion_s == pytest.approx(21.2 * HOUR)
    assert not status.exhausted


def test_period_window_drops_events_older_than_the_period() -> None:
    slo = availability(period="3d")
    bad = np.concatenate([np.full(60, 10_000.0), np.zeros(72 * 60)])  # a failed hour, then three good days
    assert budget_status(slo, minutes(bad), T0 + 72 * HOUR).consumed == pytest.approx(1 / 72 / 0.001)
    assert budget_status(slo, minutes(bad), T0 + 73 * HOUR).consumed == 0.0


def test_overspent_budget_has_negative_remaining_and_no_time_left() -> None:
    status = budget_status(availability(), minutes(np.full(60, 100.0)), T0 + HOUR)  # 1% bad vs 0.1% allowed
    assert status.consumed == pytest.approx(10.0)
    assert status.remaining == pytest.approx(-9.0)
    assert status.exhausted and status.time_to_exhaustion_s == 0.0


def test_time_to_exhaustion_at_burn_rate_one_is_the_rest_of_the_period() -> None:
    assert time_to_exhaustion(1.0, 1.0, 30 * DAY) == 30 * DAY
    assert time_to_exhaustion(0.5, 2.0, 30 * DAY) == pytest.approx(7.5 * DAY)
    assert time_to_exhaustion(0.5, 0.0, 30 * DAY) == math.inf


def test_timeslices_budget_with_3_bad_slices_of_100() -> None:
    slo = SLOConfig(
        name="recall",
        model="m",
        objective=0.95,
        timeslice="1h",
        sli={"kind": "quality", "metric": "recall", "min": 0.9},
    )
    assert slo.budgeting_mode == "timeslices"
    good = np.ones(100, dtype=bool)
    good[[10, 50, 99]] = False
    series = MinuteSeries.from_slices(T0, good, slo.timeslice_s)
    status = budget_status(slo, series, T0 + 100 * HOUR)
    assert (status.good, status.total) == (97.0, 100.0)
    assert status.sli == pytest.approx(0.97)
    assert status.consumed == pytest.approx(0.03 / 0.05)  # 0.6 of the budget
    assert status.remaining == pytest.approx(0.4)
    # the last hour's slice was bad: burn rate 1 / 0.05 = 20
    assert status.current_burn_rate == pytest.approx(20.0)
    assert status.time_to_exhaustion_s == pytest.approx(0.4 * 30 * DAY / 20)


def test_bad_series_are_refused_with_what_was_expected() -> None:
    with pytest.raises(InvalidParameterError, match="good and total"):
        MinuteSeries(T0, good=np.zeros(3), total=np.zeros(4))
    with pytest.raises(InvalidParameterError, match="0 <= good <= total"):
        MinuteSeries(T0, good=np.full(2, 5.0), total=np.full(2, 4.0))
    with pytest.raises(InvalidParameterError, match="step_s"):
        MinuteSeries(T0, good=np.zeros(2), total=np.zeros(2), step_s=0)
