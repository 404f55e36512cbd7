"""Thresholds from the reference's variability (NannyML's default) and the L-infinity distance.

The golden test replays NannyML 0.13 on its synthetic car-loan data (bench/golden/make_golden_alerts.py):
every column, every analysis chunk, the same alert.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisre.monitor.drift import ALL_METHODS, ConstantThreshold, LInfinity, MethodError, StdThreshold, drift
from aisre.monitor.drift.thresholds import chunk_slices, clip
from aisre.monitor.tabular.frame import DataError

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def car_loan():
    data = pd.read_parquet(GOLDEN / "car_loan.parquet")
    data["y_pred"] = data["y_pred"].astype(str)  # NannyML's treat_as_categorical=["y_pred"]
    ref = data[data["window"] == "reference"].drop(columns=["window"]).reset_index(drop=True)
    analysis = data[data["window"] == "analysis"].drop(columns=["window"]).reset_index(drop=True)
    return ref, analysis


@pytest.mark.parametrize("method", ["jensenshannon", "hellinger", "linfinity"])
def test_compat_nannyml_std_threshold_reproduces_nannyml_alerts_per_chunk(car_loan, method):
    golden = json.loads((GOLDEN / "nannyml_alerts.json").read_text())
    want = golden["methods"][method]["columns"]
    ref, analysis = car_loan
    size = golden["chunk_size"]
    columns = list(want)
    mismatches = []
    for k, start in enumerate(range(0, len(analysis), size)):
        chunk = analysis.iloc[start : start + size]
        result = drift(ref, chunk, method=method, columns=columns, threshold="std", compat="nannyml", chunk_size=size)
        for col, expected in want.items():
            got = result.columns[col]
            assert got.statistic == pytest.approx(expected["values"][k], rel=1e-12, abs=1e-14), (col, k)
            assert got.details["upper_threshold"] == pytest.approx(expected["upper_threshold"], rel=1e-9), col
            assert got.details["lower_threshold"] == expected["lower_threshold"], col
            if got.drift != expected["alerts"][k]:
                mismatches.append((col, k, got.statistic, expected["upper_threshold"]))
    assert mismatches == []
    assert sum(sum(c["alerts"]) for c in want.values()) > 0  # the data does drift


def test_golden_alerts_cover_every_method_and_differ_from_a_constant_threshold():
    golden = json.loads((GOLDEN / "nannyml_alerts.json").read_text())
    alerts = [a for m in golden["methods"].values() for c in m["columns"].values() for a in c["alerts"]]
    constant = [a for m in golden["methods"].values() for c in m["columns"].values() for a in c["constant_alerts"]]
    assert sum(alerts) == golden["n_alerts"]
    assert alerts != constant  # the data-derived threshold is what the comparison tests


def test_std_threshold_is_mean_plus_k_population_std_of_reference_chunk_statistics():
    rng = np.random.default_rng(7)
    ref = {"x": rng.normal(size=12_000)}
    cur = {"x": rng.normal(size=3_000)}
    result = drift(ref, cur, method="jensenshannon", threshold=StdThreshold(k=2.5)).columns["x"]
    from aisre.monitor.drift import get_method

    tester = get_method("jensenshannon").fit(ref["x"])
    stats = [tester.score(ref["x"][i : i + 3000]).statistic for i in range(0, 12_000, 3000)]
    assert result.details["reference_chunks"] == 4
    assert result.details["upper_threshold"] == pytest.approx(np.mean(stats) + 2.5 * np.std(stats), rel=1e-12)
    assert result.threshold == result.details["upper_threshold"]
    assert result.details["lower_threshold"] is None
    assert result.drift == (result.statistic > result.threshold)


def test_std_threshold_flags_a_shift_the_reference_never_shows_and_not_a_same_distribution_window():
    rng = np.random.default_rng(11)
    ref = {"x": rng.normal(size=20_000), "c": rng.choice(list("abcd"), 20_000, p=[0.4, 0.3, 0.2, 0.1])}
    same = {"x": rng.normal(size=2_000), "c": rng.choice(list("abcd"), 2_000, p=[0.4, 0.3, 0.2, 0.1])}
    moved = {"x": rng.normal(0.3, 1, size=2_000), "c": rng.choice(list("abcd"), 2_000, p=[0.3, 0.3, 0.2, 0.2])}
    methods = {"x": "hellinger", "c": "linfinity"}
    assert drift(ref, same, method=methods, threshold="std").drifted_columns == []
    assert drift(ref, moved, method=methods, threshold="std").drifted_columns == ["x", "c"]


def test_lower_std_bound_is_clipped_at_zero_for_a_distance():
    rng = np.random.default_rng(3)
    ref, cur = {"x": rng.normal(size=10_000)}, {"x": rng.normal(size=1_000)}
    result = drift(ref, cur, method="jensenshannon", threshold=StdThreshold(k=3, lower_k=100)).columns["x"]
    assert result.details["lower_threshold"] == 0.0
    assert clip(-0.2, 1.5, (0.0, 1.0)) == (0.0, 1.0)
    assert clip(0.1, 0.5, (0.0, None)) == (0.1, 0.5)


def test_n_chunks_and_chunk_size_split_the_reference_like_nannyml_keeping_the_remainder():
    assert chunk_slices(10, chunk_size=4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert chunk_slices(10, n_chunks=3) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    rng = np.random.default_rng(5)
    ref, cur = {"x": rng.normal(size=5_000)}, {"x": rng.normal(size=700)}
    assert drift(ref, cur, method="psi", threshold="std").columns["x"].details["reference_chunks"] == 8
    assert drift(ref, cur, method="psi", threshold="std", n_chunks=5).columns["x"].details["reference_chunks"] == 5


def test_constant_threshold_alerts_strictly_outside_its_band():
    rng = np.random.default_rng(1)
    ref, cur = {"x": rng.normal(size=5_000)}, {"x": rng.normal(size=5_000)}
    stat = drift(ref, cur, method="hellinger").columns["x"].statistic
    inside = drift(ref, cur, method="hellinger", threshold=ConstantThreshold(lower=stat / 2, upper=stat))
    below = drift(ref, cur, method="hellinger", threshold=ConstantThreshold(lower=stat * 1.01))
    assert not inside.columns["x"].drift
    assert below.columns["x"].drift
    assert below.to_dict()["columns"]["x"]["lower_threshold"] == pytest.approx(stat * 1.01)


def test_linfinity_is_the_largest_change_in_one_category_share():
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    cur = np.array(["a"] * 40 + ["b"] * 30 + ["d"] * 30, dtype=object)
    for compat in (None, "nannyml"):
        result = LInfinity(compat=compat).fit(ref).score(cur)
        assert result.statistic == pytest.approx(0.3)  # "d": 0 -> 0.3
    assert "linfinity" in ALL_METHODS
    table = drift({"c": ref}, {"c": cur}, method="linfinity")
    assert table.columns["c"].drift and table.columns["c"].threshold == 0.1


def test_default_calls_carry_no_threshold_bounds():
    rng = np.random.default_rng(2)
    result = drift({"x": rng.normal(size=500)}, {"x": rng.normal(size=500)}).to_dict()["columns"]["x"]
    assert "upper_threshold" not in result and "reference_chunks" not in result


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "ks", "threshold": "std"}, MethodError, "method 'ks' decides by p-value"),
        ({"threshold": "std"}, MethodError, r"'ks' \(chosen by auto\) decides by p-value"),
        ({"method": "psi", "threshold": "sdt"}, Exception, "expected a number, \\['std'\\] or a Threshold"),
        ({"method": "psi", "chunk_size": 10}, MethodError, "chunk_size/n_chunks: only used by"),
        ({"method": "psi", "threshold": "std", "chunk_size": 10, "n_chunks": 3}, MethodError, "not both"),
        ({"method": "psi", "threshold": "std", "chunk_size": 0}, MethodError, "chunk_size: expected a whole number"),
        ({"method": "psi", "threshold": "std", "chunk_size": 400}, DataError, "needs >= 2"),
    ],
)
def test_bad_threshold_options_are_refused_with_the_option_named(kwargs, error, message):
    rng = np.random.default_rng(4)
    ref, cur = {"x": rng.normal(size=300)}, {"x": rng.normal(size=100)}
    with pytest.raises(error, match=message):
        drift(ref, cur, **kwargs)


def test_threshold_objects_validate_their_parameters():
    with pytest.raises(ValueError, match="StdThreshold.k: expected a number >= 0"):
        StdThreshold(k=-1)
    with pytest.raises(ValueError, match="lower 0.5 must be < upper 0.1"):
        ConstantThreshold(lower=0.5, upper=0.1)
    with pytest.raises(ValueError, match="give lower, upper or both"):
        ConstantThreshold()
