"""Fairness: every number equals Fairlearn's; degenerate groups are defined; gaps per window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fm
from sklearn.metrics import precision_score

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.fairness.groups import SUMMARY, fairness, fairness_over_time

TOL = 1e-12
RATES = {
    "selection_rate": fm.selection_rate,
    "true_positive_rate": fm.true_positive_rate,
    "false_positive_rate": fm.false_positive_rate,
    "precision": precision_score,
    "count": fm.count,
}


def _data(seed: int, groups: list[str], n: int = 3000):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(len(groups)) * 3)
    g = rng.choice(np.array(groups, dtype=object), n, p=weights)
    bias = {name: rng.uniform(-0.25, 0.25) for name in groups}
    y = (rng.random(n) < 0.45).astype(int)
    p_select = np.clip(0.2 + 0.5 * y + np.array([bias[v] for v in g]), 0.01, 0.99)
    return y, (rng.random(n) < p_select).astype(int), g


CASES = [
    (0, ["F", "M"]),
    (1, ["a", "b", "c"]),
    (2, ["white", "black", "asian", "hispanic", "other"]),
    (3, ["18-25", "26-40", "41-65", "65+"]),
]


@pytest.mark.parametrize(("seed", "groups"), CASES)
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_summary_numbers_equal_fairlearn(seed, groups, method):
    y, pred, g = _data(seed, groups)
    r = fairness(y, pred, g, method=method)
    kw = {"sensitive_features": g, "method": method}
    assert r.demographic_parity_difference == pytest.approx(fm.demographic_parity_difference(y, pred, **kw), abs=TOL)
    assert r.demographic_parity_ratio == pytest.approx(fm.demographic_parity_ratio(y, pred, **kw), abs=TOL)
    assert r.equal_opportunity_difference == pytest.approx(fm.equal_opportunity_difference(y, pred, **kw), abs=TOL)
    assert r.equalized_odds_difference == pytest.approx(fm.equalized_odds_difference(y, pred, **kw), abs=TOL)
    # disparate impact is always min/max selection rate: Fairlearn's between-groups ratio
    expected_di = fm.demographic_parity_ratio(y, pred, sensitive_features=g)
    assert r.disparate_impact_ratio == pytest.approx(expected_di, abs=TOL)
    assert r.four_fifths_rule_violated == (expected_di < 0.8)


@pytest.mark.parametrize(("seed", "groups"), CASES)
def test_per_group_table_equals_metric_frame(seed, groups):
    y, pred, g = _data(seed, groups)
    frame = fm.MetricFrame(metrics=RATES, y_true=y, y_pred=pred, sensitive_features=g)
    r = fairness(y, pred, pd.Series(g, name="group_name"))
    assert r.sensitive_feature == "group_name"
    table = r.to_pandas()
    assert sorted(table.index) == sorted(frame.by_group.index)
    for name in RATES:
        ours = table.loc[frame.by_group.index, name].to_numpy(dtype=float)
        np.testing.assert_allclose(ours, frame.by_group[name].to_numpy(dtype=float), rtol=0, atol=TOL)
        overall = getattr(r.overall, name)
        assert overall == pytest.approx(float(frame.overall[name]), abs=TOL), name


def test_intersectional_groups_from_several_sensitive_columns_equal_fairlearn():
    y, pred, g = _data(4, ["F", "M"])
    age = np.random.default_rng(9).choice(["young", "old"], len(y))
    table = pd.DataFrame({"sex": g, "age": age})
    r = fairness(y, pred, table)
    assert r.sensitive_feature == "sex,age" and len(r.groups) == 4
    assert "sex=F, age=old" in r.groups
    kw = {"sensitive_features": table}
    assert r.demographic_parity_difference == pytest.approx(fm.demographic_parity_difference(y, pred, **kw), abs=TOL)
    assert r.equalized_odds_difference == pytest.approx(fm.equalized_odds_difference(y, pred, **kw), abs=TOL)


def test_group_without_positives_has_nan_tpr_by_default_and_fairlearns_zero_on_request():
    y = np.array([1, 0, 1, 0, 0, 0, 1, 1, 0, 0])
    pred = np.array([1, 0, 0, 1, 0, 1, 1, 1, 0, 1])
    g = np.array(["a", "a", "a", "a", "b", "b", "c", "c", "c", "c"])  # group b: no positives
    r = fairness(y, pred, g)
    assert math.isnan(r.groups["b"].true_positive_rate) and r.groups["b"].n_positive == 0
    assert any("no positive labels" in note for note in r.notes)
    tprs = [0.5, 1.0]  # groups a and c; b is left out of the gap
    assert r.equal_opportunity_difference == pytest.approx(max(tprs) - min(tprs), abs=TOL)
    # Fairlearn (via sklearn's confusion_matrix normalize='true') reports TPR 0 for group b:
    zero = fairness(y, pred, g, undefined_rate="zero")
    assert zero.groups["b"].true_positive_rate == 0.0
    kw = {"sensitive_features": g}
    assert zero.equal_opportunity_difference == pytest.approx(fm.equal_opportunity_difference(y, pred, **kw), abs=TOL)
    assert zero.equalized_odds_difference == pytest.approx(fm.equalized_odds_difference(y, pred, **kw), abs=TOL)


def test_degenerate_inputs_never_crash():
    empty = fairness([], [], [])
    assert empty.groups == {} and math.isnan(empty.demographic_parity_difference)
    assert not empty.four_fifths_rule_violated and empty.breaches == {"disparate_impact_ratio": False}
    one_group = fairness([1, 0, 1], [1, 1, 0], ["x", "x", "x"])
    assert one_group.demographic_parity_difference == 0.0 and one_group.disparate_impact_ratio == 1.0
    nobody_selected = fairness([1, 0, 1, 0], [0, 0, 0, 0], ["x", "y", "x", "y"])
    assert nobody_selected.demographic_parity_difference == 0.0
    assert math.isnan(nobody_selected.disparate_impact_ratio)  # 0/0: undefined, not flagged
    no_labels = fairness(None, [1, 0, 1, 1], ["x", "y", "x", "y"])
    assert no_labels.demographic_parity_difference == 0.5 and math.isnan(no_labels.equalized_odds_difference)
    missing = fairness([1, 0, 1, None], [1, None, 1, 0], ["x", "y", None, "y"])
    assert missing.groups["x"].count == 1 and missing.groups["y"].count == 1  # rows 0 and 3 kept
    assert math.isnan(missing.groups["y"].true_positive_rate)  # row 3 has no label


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "pairwise"}, "method: expected"),
        ({"thresholds": {"accuracy": 0.9}}, "thresholds: unknown"),
        ({"undefined_rate": "one"}, "undefined_rate: expected"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        fairness([0, 1], [0, 1], ["a", "b"], **kwargs)


def test_non_binary_labels_and_length_mismatch_are_named():
    with pytest.raises(DataError, match="need binary labels"):
        fairness([0, 1, 2], [0, 1, 2], ["a", "b", "c"])
    with pytest.raises(DataError, match="sensitive: expected 2 values"):
        fairness([0, 1], [0, 1], ["a"])


def test_four_fifths_rule_thresholds_breaches_and_signals():
    y, pred, g = _data(1, ["a", "b", "c"])
    limits = {"disparate_impact_ratio": 0.8, "demographic_parity_difference": 0.05}
    r = fairness(y, pred, g, sensitive_name="segment", thresholds=limits)
    assert r.breaches["disparate_impact_ratio"] == (r.disparate_impact_ratio < 0.8)
    assert r.breaches["demographic_parity_difference"] == (r.demographic_parity_difference > 0.05)
    signals = r.signals("m", "v1", 0.0, 60.0)
    by_name = {s.name: s for s in signals if "group" not in s.labels}
    assert set(by_name) == set(SUMMARY)
    di = by_name["disparate_impact_ratio"]
    assert di.threshold == 0.8 and di.labels["sensitive_feature"] == "segment"
    per_group = [s for s in signals if s.labels.get("group") == "a"]
    assert {s.name for s in per_group} == {"selection_rate", "true_positive_rate", "false_positive_rate"}
    assert r.to_dict()["summary"]["disparate_impact_ratio"] == r.disparate_impact_ratio


def test_fairness_over_time_flags_the_window_where_a_group_is_treated_worse():
    rng = np.random.default_rng(5)
    n = 1200
    ts = rng.uniform(0, 3 * 3600, n)
    g = rng.choice(["F", "M"], n)
    y = rng.integers(0, 2, n)
    unfair = (ts >= 2 * 3600) & (g == "F")  # third hour: F is selected far less
    pred = (rng.random(n) < np.where(unfair, 0.15, 0.5)).astype(int)
    table = pd.DataFrame({"ts": ts, "y_true": y, "y_pred": pred, "sex": g})
    limits = {"disparate_impact_ratio": 0.8, "equalized_odds_difference": 0.2}
    series = fairness_over_time(table, "sex", "1h", thresholds=limits)
    rows = series.rows()
    assert [r["window_start"] for r in rows] == [0.0, 3600.0, 7200.0]
    assert [r["disparate_impact_ratio_breached"] for r in rows] == [False, False, True]
    assert rows[2]["equalized_odds_difference_breached"] is True
    hour3 = ts >= 7200
    expected = fm.demographic_parity_ratio(y[hour3], pred[hour3], sensitive_features=g[hour3])
    assert rows[2]["disparate_impact_ratio"] == pytest.approx(expected, abs=TOL)
    assert all(s.labels["sensitive_feature"] == "sex" for s in series.signals("m", "v1"))
