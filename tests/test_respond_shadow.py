"""Shadow evaluation from a real store: shadow records are paired with the primaries they mirror,
compared (agreement, correlation, errors, latency, labelled quality), judged and written as signals."""

from __future__ import annotations

import numpy as np
import pytest

from aisre import InferenceRecord, Label, Route, Status
from aisre.errors import DataError
from aisre.respond.shadow import ShadowCriteria, shadow_report


def _traffic(store, rng, n=400, flip=0.0, fix=0.2, shadow_error=0.0, shadow_slow=1.0, trace=False):
    """Primary v1 and shadow v2 on the same OIP-style rows (same inputs, key, close in time); the shadow
    flips a share `flip` of all answers and corrects a share `fix` of the primary's wrong ones."""
    records, labels = [], []
    for i in range(n):
        x = {"f": round(float(rng.normal()), 6), "g": i}
        truth = int(x["f"] > 0)
        pred = truth if rng.random() < 0.9 else 1 - truth
        p_score = float(rng.uniform(0.55, 1.0) if pred else rng.uniform(0.0, 0.45))
        common = {"model": "m", "inputs": x, "key_id": f"k{i % 7}", "trace_id": f"t{i}" if trace else None}
        primary = InferenceRecord(
            version="v1",
            prediction=pred,
            scores={"0": 1 - p_score, "1": p_score},
            latency_s=0.05,
            ts=1000.0 + i,
            **common,
        )
        failed = rng.random() < shadow_error
        s_pred = pred if rng.random() >= flip else 1 - pred
        if pred != truth and rng.random() < fix:
            s_pred = truth
        s_score = float(np.clip(p_score + rng.normal(0, 0.03), 0, 1))
        shadow = InferenceRecord(
            version="v2",
            route=Route.SHADOW,
            status=Status.ERROR if failed else Status.OK,
            prediction=None if failed else s_pred,
            scores=None if failed else {"0": 1 - s_score, "1": s_score},
            latency_s=0.05 * shadow_slow,
            ts=1000.0 + i + 0.01,
            **common,
        )
        records += [primary, shadow]
        labels.append(Label(primary.id, truth, 5000.0))
    store.write_batch(records, durable=True)
    store.add_labels(labels)


def test_agreeing_shadow_passes_and_writes_signals(store):
    _traffic(store, np.random.default_rng(1))
    report = shadow_report(store, "m", "v2", write_signals=True, now=6000.0)
    assert report.pairs == 400 and report.unpaired_shadow == 0
    assert report.pairing == {"content": 400}
    assert report.agreement is not None and report.agreement["rate"] > 0.95
    assert report.correlation is not None and report.correlation["pearson"] > 0.95
    assert report.quality is not None and report.quality["n"] == 400
    assert report.passed, report.checks
    stored = {s.name: s for _, s in store.signals(model="m", version="v2")}
    assert stored["shadow_agreement"].value == pytest.approx(report.agreement["rate"])
    assert stored["shadow_passed"].value == 1.0 and stored["shadow_agreement"].labels["primary"] == "v1"


def test_disagreeing_failing_slow_shadow_fails_naming_each_check(store):
    _traffic(store, np.random.default_rng(2), flip=0.3, shadow_error=0.1, shadow_slow=2.0)
    report = shadow_report(store, "m", "v2")
    failed = {c["name"] for c in report.checks if not c["passed"]}
    assert {"agreement", "error_rate_delta", "latency_p95_ratio", "accuracy"} <= failed
    assert not report.passed
    assert report.quality is not None and report.quality["delta"] < -0.1


def test_unique_trace_ids_pair_records_before_content(store):
    _traffic(store, np.random.default_rng(3), trace=True)
    report = shadow_report(store, "m", "v2")
    assert report.pairing == {"trace_id": 400}


def test_shadow_records_without_a_matching_primary_are_counted_unpaired(store):
    _traffic(store, np.random.default_rng(4), n=150)
    orphan = InferenceRecord(model="m", version="v2", route=Route.SHADOW, inputs={"f": 99.0}, prediction=1, ts=1100.0)
    store.write_batch([orphan], durable=True)
    report = shadow_report(store, "m", "v2", criteria=ShadowCriteria(min_pairs=100))
    assert report.unpaired_shadow == 1 and report.pairs == 150
    assert any("without a primary" in n for n in report.notes)


def test_no_shadow_records_is_a_clear_error(store):
    _traffic(store, np.random.default_rng(5), n=10)
    with pytest.raises(DataError, match="m/v3: no shadow records"):
        shadow_report(store, "m", "v3")
