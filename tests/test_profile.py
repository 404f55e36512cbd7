"""Profiles merge exactly: a.merge(b) is the profile of a ∪ b (property test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisre.monitor.profiles.profile import CategoricalProfile, NumericProfile, fit_profile
from aisre.monitor.profiles.reference import Reference
from aisre.monitor.tabular.frame import DataError

floats = st.floats(-1e6, 1e6) | st.sampled_from([float("nan"), float("inf"), float("-inf")])
REF = np.random.default_rng(1).normal(size=500)


def _numeric(values: list[float]) -> NumericProfile:
    return NumericProfile.empty_like(fit_profile(REF, quantiles=True)).update(np.array(values, dtype=float))


@settings(max_examples=200, deadline=None)
@given(st.lists(floats, max_size=60), st.lists(floats, max_size=60))
def test_numeric_merge_equals_profile_of_union(a: list[float], b: list[float]):
    merged = _numeric(a).merge(_numeric(b))
    union = _numeric(a + b)
    assert merged.counts.tolist() == union.counts.tolist()
    assert (merged.n, merged.missing, merged.infinite) == (union.n, union.missing, union.infinite)
    assert (merged.min, merged.max) == (union.min, union.max)
    assert merged.mean == pytest.approx(union.mean, rel=1e-9, abs=1e-6)
    assert merged.m2 == pytest.approx(union.m2, rel=1e-7, abs=1e-3)
    assert merged.sketch.n == union.sketch.n


cats = st.sampled_from(["a", "b", "c", "d", "zz", None])


@settings(max_examples=200, deadline=None)
@given(st.lists(cats, max_size=60), st.lists(cats, max_size=60))
def test_categorical_merge_equals_profile_of_union(a: list, b: list):
    vocab = ("a", "b", "c")

    def prof(values: list) -> CategoricalProfile:
        return CategoricalProfile(vocab).update(np.array(values, dtype=object))

    merged, union = prof(a).merge(prof(b)), prof(a + b)
    assert merged.counts.tolist() == union.counts.tolist() and merged.missing == union.missing


def test_numeric_profile_moments_match_numpy():
    values = np.random.default_rng(2).exponential(size=10_001)
    p = fit_profile(values)
    assert p.n == values.size and p.mean == pytest.approx(values.mean(), rel=1e-12)
    assert p.variance == pytest.approx(values.var(), rel=1e-9)
    assert p.counts.sum() == values.size and p.counts[0] == 0 and p.counts[-1] == 0
    inner, _ = np.histogram(values, bins=p.edges)
    assert p.counts[1:-1].tolist() == inner.tolist()  # same as numpy's histogram inside the range


def test_open_outer_bins_catch_values_outside_the_reference():
    p = NumericProfile.empty_like(fit_profile(REF)).update(np.array([-100.0, 100.0, np.inf, np.nan]))
    assert p.counts[0] == 1 and p.counts[-1] == 2 and p.infinite == 1 and p.missing == 1


def test_category_cap_puts_the_rest_in_other():
    values = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None], dtype=object)
    p = fit_profile(values, category_cap=2)
    assert p.vocabulary == ("a", "b") and p.other == 3 and p.missing == 1


def test_reference_saves_and_loads_without_raw_data(tmp_path: Path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=50_000), "c": rng.choice(["u", "v", "w"], 50_000)})
    ref = Reference.fit(df, quantiles=True, sample_size=1_000)
    path = tmp_path / "ref.json"
    ref.save(path)
    assert path.stat().st_size < 100_000
    back = Reference.load(path)
    assert back.profile.to_dict() == ref.profile.to_dict()
    assert np.array_equal(back.samples["x"], ref.samples["x"]) and len(back.samples["c"]) == 1_000
    window = back.profile_of(df.iloc[:100])
    assert window.rows == 100 and window.columns["x"].n == 100
    assert back.profile.columns["x"].quantile(0.5) == pytest.approx(np.median(df["x"]), abs=0.05)


def test_reference_errors_name_the_problem(tmp_path: Path):
    ref = Reference.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    with pytest.raises(DataError, match=r"columns missing from the current data: \['c'\]"):
        ref.profile_of(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(DataError, match="column 'x': numeric in the reference, but the current values are"):
        ref.profile_of(pd.DataFrame({"x": ["oops"], "c": ["a"]}))
    with pytest.raises(DataError, match="no rows"):
        Reference.fit(pd.DataFrame({"x": []}))
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="not an aisre reference"):
        Reference.load(tmp_path / "bad.json")
