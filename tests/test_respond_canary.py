"""Canary analysis: a better canary is promoted, a worse one rolled back, an equal one falsely rolled
back no more often than the stated family-wise error rate; the step progression is pure logic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aisre import InferenceRecord, Label, Route, Status
from aisre.errors import InvalidParameterError
from aisre.records import Signal
from aisre.respond.canary import CanaryPolicy, analyze_canary, analyze_canary_in_store, next_action
from aisre.respond.samples import ArmSample


def _arm(rng, version, n=3000, error=0.02, latency=0.1, accuracy=0.8, labelled=1.0):
    errors = (rng.random(n) < error).astype(float)
    ok = int(n - errors.sum())
    quality = (rng.random(int(ok * labelled)) < accuracy).astype(float)
    return ArmSample(version, errors, rng.gamma(4.0, latency / 4.0, ok), quality)


def test_truly_better_canary_is_promoted():
    rng = np.random.default_rng(1)
    result = analyze_canary(_arm(rng, "v1"), _arm(rng, "v2", error=0.01, latency=0.08, accuracy=0.86))
    assert result.decision == "promote"
    assert {c.name: c.status for c in result.checks} == {
        "error_rate": "pass",
        "latency_mean_s": "pass",
        "accuracy": "pass",
    }


@pytest.mark.parametrize(
    ("worse", "check"),
    [({"error": 0.06}, "error_rate"), ({"latency": 0.14}, "latency_mean_s"), ({"accuracy": 0.72}, "accuracy")],
)
def test_canary_worse_on_one_check_is_rolled_back_naming_it(worse, check):
    rng = np.random.default_rng(2)
    result = analyze_canary(_arm(rng, "v1"), _arm(rng, "v2", **worse))
    assert result.decision == "rollback"
    assert [c.name for c in result.checks if c.status == "fail"] == [check]
    assert any(check in reason for reason in result.reasons)


def test_equal_canary_false_rollbacks_stay_within_stated_alpha_over_500_runs():
    rng = np.random.default_rng(3)
    policy = CanaryPolicy(alpha=0.05)
    runs, rollbacks, uncorrected = 500, 0, 0
    for _ in range(runs):
        result = analyze_canary(_arm(rng, "v1", n=1500), _arm(rng, "v2", n=1500), policy)
        rollbacks += result.decision == "rollback"
        uncorrected += any(c.p_worse is not None and c.p_worse <= policy.alpha for c in result.checks)
    se = math.sqrt(policy.alpha * (1 - policy.alpha) / runs)
    assert rollbacks / runs <= policy.alpha + 3 * se
    # Why the Holm correction: the same three checks each at alpha reject far more often (~1 - 0.95³).
    assert uncorrected / runs > policy.alpha + 3 * se


def test_small_canary_holds_until_enough_traffic():
    rng = np.random.default_rng(4)
    result = analyze_canary(_arm(rng, "v1"), _arm(rng, "v2", n=50))
    assert result.decision == "hold"
    assert {c.status for c in result.checks if c.kind == "tested"} == {"skipped"}


def test_frozen_budget_turns_promotion_into_hold():
    rng = np.random.default_rng(1)
    result = analyze_canary(_arm(rng, "v1"), _arm(rng, "v2", accuracy=0.86), frozen=True)
    assert result.decision == "hold"
    assert "frozen" in result.reasons[0]


def test_descriptive_checks_hold_but_never_roll_back():
    rng = np.random.default_rng(1)
    stable, canary = _arm(rng, "v1"), _arm(rng, "v2", error=0.01, accuracy=0.86)
    held = analyze_canary(stable, canary, estimated={"accuracy": (0.85, 0.70)}, drift={"dataset_drift": (False, True)})
    assert held.decision == "hold"
    assert {c.name for c in held.checks if c.status == "warn"} == {"estimated_accuracy", "dataset_drift"}


def test_fairness_gap_only_on_canary_holds():
    rng = np.random.default_rng(5)
    n = 2000
    stable, canary = _arm(rng, "v1", n=n, error=0.0), _arm(rng, "v2", n=n, error=0.0)
    for arm, biased in ((stable, False), (canary, True)):
        groups = rng.choice(["a", "b"], arm.labelled)
        rate = np.where((groups == "b") & biased, 0.2, 0.5)
        arm.y_pred = list((rng.random(arm.labelled) < rate).astype(int))
        arm.y_true = list((rng.random(arm.labelled) < 0.5).astype(int))
        arm.groups = list(groups)
    result = analyze_canary(stable, canary, sensitive_name="segment")
    fair = next(c for c in result.checks if c.name == "demographic_parity_difference")
    assert fair.status == "warn" and fair.canary > fair.stable
    assert result.decision == "hold"


def test_progression_walks_the_steps_and_rolls_back_to_zero():
    steps = (5, 25, 50, 100)
    assert next_action(steps, 5, "promote").weight_pct == 25
    assert next_action(steps, 50, "promote").action == "advance"
    assert next_action(steps, 100, "promote").action == "promote"
    assert next_action(steps, 25, "hold").weight_pct == 25
    assert next_action(steps, 25, "rollback").weight_pct == 0
    with pytest.raises(InvalidParameterError, match="current_pct"):
        next_action(steps, 30, "promote")
    with pytest.raises(InvalidParameterError, match="steps"):
        next_action((50, 25, 100), 25, "promote")


def test_policy_rejects_bad_values_naming_them():
    with pytest.raises(InvalidParameterError, match="alpha"):
        CanaryPolicy(alpha=1.5)
    with pytest.raises(InvalidParameterError, match="correction"):
        CanaryPolicy(correction="sidak")  # type: ignore[arg-type]


def test_analysis_from_a_real_store_reads_records_labels_and_signals(store):
    rng = np.random.default_rng(6)
    records, labels = [], []
    for version, route, error, accuracy in (("v1", Route.PRIMARY, 0.02, 0.8), ("v2", Route.CANARY, 0.12, 0.8)):
        for i in range(600):
            failed = rng.random() < error
            truth = int(rng.random() < 0.5)
            pred = truth if rng.random() < accuracy else 1 - truth
            r = InferenceRecord(
                model="m",
                version=version,
                route=route,
                status=Status.ERROR if failed else Status.OK,
                prediction=None if failed else pred,
                latency_s=float(rng.gamma(4, 0.025)),
                ts=1000.0 + i,
            )
            records.append(r)
            if not failed:
                labels.append(Label(r.id, truth, 2000.0))
    store.write_batch(records, durable=True)
    store.add_labels(labels)
    store.write_signals(
        [Signal("m", "v2", "dataset_drift", 1.0, None, True), Signal("m", "v1", "dataset_drift", 0.0)], 1500.0
    )
    result = analyze_canary_in_store(store, "m", canary="v2", stable="v1")
    assert result.decision == "rollback"
    assert result.canary["requests"] == 600
    assert [c.name for c in result.checks if c.status == "fail"] == ["error_rate"]
    assert next(c for c in result.checks if c.name == "dataset_drift").status == "warn"


def _looks(rng, policy, runs=150, looks=10, n=2000, canary_share=0.2):
    """Equal canaries analysed at `looks` growing prefixes each; True per run that was ever rolled back."""
    out = []
    for _ in range(runs):
        stable, canary = _arm(rng, "v1", n=n), _arm(rng, "v2", n=int(n * canary_share))
        rolled = False
        for k in np.linspace(1 / looks, 1, looks):
            s = ArmSample("v1", *(x[: int(x.size * k)] for x in (stable.errors, stable.latency_s, stable.quality)))
            c = ArmSample("v2", *(x[: int(x.size * k)] for x in (canary.errors, canary.latency_s, canary.quality)))
            if analyze_canary(s, c, policy).decision == "rollback":
                rolled = True
                break
        out.append(rolled)
    return np.asarray(out)


def test_sequential_canary_keeps_false_rollbacks_within_alpha_however_often_it_is_analysed():
    # One analysis of the whole window: its always-valid p-values are minima over *every* prefix, so
    # this run is rolled back iff an analysis at some earlier moment (any look, not just 10) would be.
    rng = np.random.default_rng(8)
    policy = CanaryPolicy(alpha=0.05, sequential=True, min_requests=50, min_labels=50)
    rolled = _looks(rng, policy, looks=1)
    assert rolled.mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / rolled.size)


def test_fixed_sample_canary_analysed_at_every_look_rolls_back_equal_canaries_too_often():
    rng = np.random.default_rng(8)
    rolled = _looks(rng, CanaryPolicy(alpha=0.05, min_requests=50, min_labels=50))
    assert rolled.mean() > 0.05 + 3 * math.sqrt(0.05 * 0.95 / rolled.size)


def test_sequential_canary_still_rolls_back_a_worse_one():
    rng = np.random.default_rng(9)
    result = analyze_canary(_arm(rng, "v1", n=4000), _arm(rng, "v2", n=800, error=0.08), CanaryPolicy(sequential=True))
    assert result.decision == "rollback"
