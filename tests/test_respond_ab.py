"""A/B report from a real SQLite store: per-arm numbers, tests, effects, verdicts; sequential verdicts
keep their false-positive rate in A/A runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aisre import InferenceRecord, Label, Route, Status
from aisre.errors import DataError, InvalidParameterError
from aisre.respond.ab import ab_report, compare_arms
from aisre.respond.samples import ArmSample


def _write(store, rng, version, n, accuracy, error=0.02, latency=0.1, route=Route.PRIMARY, callers=20, ts0=1000.0):
    records, labels = [], []
    for i in range(n):
        failed = rng.random() < error
        truth = int(rng.random() < 0.5)
        r = InferenceRecord(
            model="m",
            version=version,
            route=route,
            status=Status.ERROR if failed else Status.OK,
            prediction=None if failed else (truth if rng.random() < accuracy else 1 - truth),
            latency_s=float(rng.gamma(4, latency / 4)),
            key_id=f"{version}-caller-{i % callers}",
            ts=ts0 + i,
        )
        records.append(r)
        if not failed:
            labels.append(Label(r.id, truth, ts0 + n + i))
    store.write_batch(records, durable=True)
    store.add_labels(labels)
    return records


def test_report_from_store_names_the_better_arm_with_effects_and_intervals(store):
    rng = np.random.default_rng(1)
    _write(store, rng, "v1", 3000, accuracy=0.78)
    _write(store, rng, "v2", 3000, accuracy=0.84, route=Route.CANARY)
    _write(store, rng, "v2", 200, accuracy=0.0, route=Route.SHADOW)  # not served traffic: left out
    report = ab_report(store, "m", "v1", "v2")
    assert report.verdict == "B wins"
    assert report.primary_metric == "accuracy"
    assert report.arms["b"]["requests"] == 3000
    quality = next(c for c in report.comparisons if c.metric == "accuracy")
    assert quality.difference.lower < 0.06 < quality.difference.upper
    assert quality.difference.method == "newcombe"
    assert quality.lift.estimate == pytest.approx(quality.b / quality.a - 1)
    assert quality.test.p_value < 0.001
    latency = next(c for c in report.comparisons if c.metric == "latency_mean_s")
    assert latency.test.method == "welch_ttest"
    assert report.arms["a"]["latency_s"]["p95"] > report.arms["a"]["latency_s"]["p50"]
    assert not report.notes  # sticky: no caller in both arms
    assert report.to_dict()["comparisons"][0]["metric"] == "error_rate"


def test_equal_arms_give_no_difference_yet_and_callers_in_both_arms_are_reported(store):
    rng = np.random.default_rng(2)
    a = _write(store, rng, "v1", 800, accuracy=0.8)
    for r in a[:5]:
        r.version, r.id = "v2", r.id + "x"  # the same callers served by both arms: assignment not sticky
    store.write_batch(a[:5], durable=True)
    _write(store, rng, "v2", 800, accuracy=0.8, callers=1)
    report = ab_report(store, "m", "v1", "v2", sequential=True)
    assert report.verdict == "no difference yet"
    assert report.sequential and all(c.sequential is not None for c in report.comparisons)
    assert any("not sticky" in n for n in report.notes)


def test_sequential_verdict_false_positive_rate_in_aa_runs_is_within_alpha():
    rng = np.random.default_rng(3)
    runs, n, alpha = 300, 1500, 0.05
    wins = 0
    for _ in range(runs):
        arms = [
            ArmSample(
                v, (rng.random(n) < 0.05).astype(float), rng.gamma(4, 0.025, n), (rng.random(n) < 0.8).astype(float)
            )
            for v in ("a", "b")
        ]
        wins += compare_arms(*arms, sequential=True, alpha=alpha).verdict != "no difference yet"
    assert wins / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def test_verdict_respects_direction_of_lower_is_better_metrics():
    rng = np.random.default_rng(4)
    a = ArmSample("a", (rng.random(5000) < 0.05).astype(float), rng.gamma(4, 0.025, 5000), np.array([]))
    b = ArmSample("b", (rng.random(5000) < 0.02).astype(float), rng.gamma(4, 0.025, 5000), np.array([]))
    report = compare_arms(a, b)
    assert report.primary_metric == "error_rate"
    assert report.verdict == "B wins"  # fewer errors
    assert compare_arms(b, a).verdict == "A wins"


def test_bad_requests_are_refused_with_the_reason(store):
    rng = np.random.default_rng(5)
    _write(store, rng, "v1", 50, accuracy=0.8)
    with pytest.raises(DataError, match="v9"):
        ab_report(store, "m", "v1", "v9")
    with pytest.raises(InvalidParameterError, match="b: expected a version other than a"):
        ab_report(store, "m", "v1", "v1")
    with pytest.raises(InvalidParameterError, match="primary"):
        compare_arms(
            ArmSample("a", np.zeros(5), np.ones(5), np.array([])),
            ArmSample("b", np.zeros(5), np.ones(5), np.array([])),
            primary="revenue",
        )
