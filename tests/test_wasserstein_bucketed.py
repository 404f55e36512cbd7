"""The sort-free Wasserstein-1 equals scipy.stats.wasserstein_distance on every shape of data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from aisre.monitor.drift.bucketed import wasserstein_distance

RNG = np.random.default_rng(11)

CASES = {
    "normal, unequal sizes": (RNG.normal(size=1000), RNG.normal(size=1200)),
    "large, small shift": (RNG.normal(size=200_000), RNG.normal(0.01, 1, size=150_000)),
    "large, no shift (many CDF crossings)": (RNG.normal(size=200_000), RNG.normal(size=200_000)),
    "integers with ties": (RNG.integers(0, 5, 3000).astype(float), RNG.integers(0, 5, 2000).astype(float)),
    "heavy tails": (RNG.standard_t(1.5, size=50_000), RNG.standard_t(1.5, size=40_000)),
    "far from zero": (RNG.lognormal(size=20_000) + 1e9, RNG.lognormal(size=20_000) + 1e9),
    "identical samples": ((x := RNG.normal(size=5000)), x.copy()),
    "constant and equal": (np.ones(10), np.ones(5)),
    "one value each": (np.array([1.0]), np.array([2.0])),
    "tiny vs large": (RNG.normal(size=3), RNG.normal(size=100_000)),
    "disjoint supports": (RNG.uniform(0, 1, 4000), RNG.uniform(5, 6, 3000)),
    "a range of subnormal numbers": (np.array([0.0]), np.array([2.2250738585072014e-308])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_equals_scipy(name: str) -> None:
    a, b = CASES[name]
    expected = stats.wasserstein_distance(a, b)
    assert wasserstein_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400),
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400),
    st.integers(0, 3),
    st.booleans(),
)
def test_equals_scipy_on_arbitrary_samples(a: list[float], b: list[float], rounding: int, every_level: bool) -> None:
    """Rounding makes ties (an interval between equal values must contribute nothing);
    `every_level` switches sorting off until the last level, so small samples take every
    finer level of the refinement too."""
    from aisre.monitor.drift import bucketed

    a_arr = np.round(np.array(a), rounding) if rounding else np.array(a)
    b_arr = np.round(np.array(b), rounding) if rounding else np.array(b)
    saved = bucketed.SORT_BELOW, bucketed.MIN_BUCKETS
    if every_level:
        bucketed.SORT_BELOW, bucketed.MIN_BUCKETS = 0, 4
    try:
        got = wasserstein_distance(a_arr, b_arr)
    finally:
        bucketed.SORT_BELOW, bucketed.MIN_BUCKETS = saved
    assert got == pytest.approx(stats.wasserstein_distance(a_arr, b_arr), rel=1e-9, abs=1e-6)
