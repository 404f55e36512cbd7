"""Online drift: count and time windows (tumbling, sliding), measured false-alarm rates over
1,000 no-drift windows, sequential control over a horizon, and detection delay."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from aisre.clock import ManualClock
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.online.detectors import (
    BootstrapCalibrated,
    CountWindows,
    Cusum,
    OnlineDrift,
    ProfileDistance,
    TimeWindows,
    WindowTest,
    cusum_limit,
)
from aisre.monitor.profiles.profile import fit_profile

ALPHA = 0.05
WINDOWS, SIZE = 1000, 50


def max_rate(trials: int, alpha: float = ALPHA) -> float:
    """The stated tolerance: the 99.9% binomial quantile of the alarm rate at exactly alpha
    (a detector calibrated at alpha fails the check with probability <= 0.1%)."""
    return float(binom.ppf(0.999, trials, alpha)) / trials


REFERENCE = np.random.default_rng(20).normal(size=5000)


def _detectors():
    quantile_profile = fit_profile(REFERENCE, bins="quantile:10")
    return {
        "ks": WindowTest(REFERENCE, "ks", alpha=ALPHA),
        "psi_raw_bootstrap": BootstrapCalibrated(REFERENCE, "psi", alpha=ALPHA, n_boot=1000),
        "psi_profile": ProfileDistance(quantile_profile, "psi", alpha=ALPHA, n_boot=2000),
        "jensenshannon_profile": ProfileDistance(fit_profile(REFERENCE), "jensenshannon", alpha=ALPHA, n_boot=2000),
    }


@pytest.mark.parametrize("name", ["ks", "psi_raw_bootstrap", "psi_profile", "jensenshannon_profile"])
def test_no_drift_alarm_rate_over_1000_windows_is_at_most_alpha(name, record_property):
    detector = _detectors()[name]
    stream = np.random.default_rng(21).normal(size=WINDOWS * SIZE)
    verdicts = OnlineDrift(detector, CountWindows(SIZE)).update(stream)
    assert len(verdicts) == WINDOWS
    rate = float(np.mean([v.drift for v in verdicts]))
    record_property("false_alarm_rate", rate)
    print(f"{name}: {rate:.3f} false alarms per window over {WINDOWS} windows of {SIZE}")
    assert rate <= max_rate(WINDOWS)  # 0.073


@pytest.mark.parametrize("name", ["ks", "psi_raw_bootstrap", "psi_profile", "jensenshannon_profile"])
def test_a_shifted_stream_alarms_within_two_windows(name):
    detector = _detectors()[name]
    shifted = np.random.default_rng(22).normal(0.75, 1.0, size=10 * SIZE)
    verdicts = OnlineDrift(detector, CountWindows(SIZE)).update(shifted)
    first = next(i for i, v in enumerate(verdicts) if v.drift)
    assert first <= 1
    assert np.mean([v.drift for v in verdicts]) >= 0.5


def _streams_with_any_alarm(make_detector, streams: int, horizon: int, size: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hit = 0
    for _ in range(streams):
        verdicts = OnlineDrift(make_detector(), CountWindows(size)).update(rng.normal(size=horizon * size))
        hit += any(v.drift for v in verdicts)
    return hit / streams


def test_sequential_detectors_bound_false_alarms_over_the_horizon():
    """P(any false alarm in H = 20 windows) <= alpha: Bonferroni and the simulated CUSUM limit."""
    horizon, streams = 20, 400
    profile = fit_profile(REFERENCE, bins="quantile:10")
    inner = ProfileDistance(profile, "jensenshannon", alpha=ALPHA, n_boot=1000)  # null cached once
    bonferroni = _streams_with_any_alarm(
        lambda: WindowTest(REFERENCE, "ks", ALPHA, horizon=horizon), streams, horizon, 30, seed=30
    )
    cusum = _streams_with_any_alarm(lambda: Cusum(inner, horizon=horizon, alpha=ALPHA), streams, horizon, 30, 31)
    print(f"P(any alarm in {horizon} windows): bonferroni {bonferroni:.3f}, cusum {cusum:.3f}")
    assert bonferroni <= max_rate(streams)  # 0.0875
    assert cusum <= max_rate(streams)


def test_cusum_accumulates_small_shifts_that_single_windows_miss():
    inner = WindowTest(REFERENCE, "ks", alpha=ALPHA)
    cusum = Cusum(WindowTest(REFERENCE, "ks", alpha=ALPHA), horizon=100, alpha=ALPHA)
    shifted = np.random.default_rng(23).normal(0.3, 1.0, size=40 * 30)
    single = OnlineDrift(inner, CountWindows(30)).update(shifted)
    sequential = OnlineDrift(cusum, CountWindows(30)).update(shifted)
    assert any(v.drift for v in sequential)
    first = next(i for i, v in enumerate(sequential) if v.drift)
    assert first <= 15
    assert np.mean([v.drift for v in single]) < 0.5  # each 30-value window alone is weak evidence


def test_cusum_limit_is_the_simulated_quantile():
    h = cusum_limit(horizon=50, alpha=0.05, allowance=1.5, n_paths=20_000, seed=1)
    rng = np.random.default_rng(99)
    s = np.zeros(20_000)
    peak = np.zeros(20_000)
    for _ in range(50):
        s = np.maximum(0.0, s + rng.exponential(size=20_000) - 1.5)
        peak = np.maximum(peak, s)
    assert np.mean(peak > h) == pytest.approx(0.05, abs=0.01)


def test_count_windows_tumble_and_slide():
    values = np.arange(250, dtype=float)
    tumbling = OnlineDrift(WindowTest(REFERENCE), CountWindows(100)).update(values)
    assert [v.n for v in tumbling] == [100, 100]
    sliding = OnlineDrift(WindowTest(REFERENCE), CountWindows(100, step=25))
    out = sliding.update(values[:130]) + sliding.update(values[130:])
    assert [v.n for v in out] == [100] * 7 and [v.index for v in out] == list(range(7))


def test_a_sliding_window_profile_is_the_merge_of_its_panes():
    detector = ProfileDistance(fit_profile(REFERENCE), "psi")
    rng = np.random.default_rng(5)
    values = rng.normal(size=400)
    seen = []

    class Spy(ProfileDistance):
        def test(self, window):
            seen.append(window.counts.copy())
            return super().test(window)

    spy = Spy(detector.reference, "psi")
    OnlineDrift(spy, CountWindows(200, step=50)).update(values)
    assert len(seen) == 5
    for i, counts in enumerate(seen):
        whole = type(detector.reference).empty_like(detector.reference).update(values[i * 50 : i * 50 + 200])
        assert counts.tolist() == whole.counts.tolist()


def test_time_windows_follow_the_injected_clock():
    clock = ManualClock(start=1_767_225_600.0)  # a multiple of 60
    stream = OnlineDrift(WindowTest(REFERENCE), TimeWindows(60, step=20, clock=clock))
    rng = np.random.default_rng(6)
    out = []
    for _ in range(180):  # 3 minutes, 5 values a second
        out += stream.update(rng.normal(size=5))
        clock.advance(1)
    out += stream.tick()
    assert [(v.start - 1_767_225_600.0, v.end - v.start, v.n) for v in out[:2]] == [(0, 60, 300), (20, 60, 300)]
    assert len(out) == 7  # windows ending at 60, 80, ..., 180 s
    clock.advance(3600)  # an hour without traffic: the two windows still holding data close,
    assert [v.n for v in stream.tick()] == [200, 100]  # then no empty verdicts
    assert stream.tick() == []
    stream.update(rng.normal(size=10))
    clock.advance(60)
    later = stream.tick()
    assert [v.n for v in later] == [10, 10, 10]
    assert stream.update([1.0], timestamps=[clock.now() - 3600]) == [] and stream.late == 1


def test_event_time_replay_uses_the_datas_own_timestamps():
    stream = OnlineDrift(WindowTest(REFERENCE), TimeWindows(10, clock=None))
    ts = 1000.0 + np.arange(100) * 0.5  # 50 s of data
    out = stream.update(np.random.default_rng(7).normal(size=100), timestamps=ts)
    assert [(v.start, v.n) for v in out] == [(1000.0, 20), (1010.0, 20), (1020.0, 20), (1030.0, 20)]
    signal = out[0].signals("m", "v1", column="age")[0]
    assert signal.labels == {"detector": "ks", "column": "age"} and signal.window_start == 1000.0


def test_bad_arguments_are_named():
    with pytest.raises(InvalidParameterError, match="step"):
        CountWindows(100, step=30)
    with pytest.raises(InvalidParameterError, match="alpha"):
        WindowTest(REFERENCE, alpha=0)
    with pytest.raises(InvalidParameterError, match="psi"):
        WindowTest(REFERENCE, "psi")
    with pytest.raises(DataError, match="timestamps"):
        OnlineDrift(WindowTest(REFERENCE), TimeWindows(10, clock=None)).update([1.0])
    with pytest.raises(InvalidParameterError, match="allowance"):
        Cusum(WindowTest(REFERENCE), allowance=0.5)
