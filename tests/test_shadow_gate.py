"""A passing shadow is a promotion criterion: `evaluation.<model>.shadow_required_for` gates canary and stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.config.loader import config_from_dict
from aisre.records import Signal
from aisre.respond.promotion import configured_registry
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0


def test_canary_needs_the_newest_shadow_evaluation_to_have_passed(tmp_path: Path) -> None:
    db = tmp_path / "aisre.db"
    config = config_from_dict(
        {"store": f"sqlite:///{db}", "evaluation": {"fraud": {"required_for": [], "shadow_required_for": ["canary"]}}}
    )
    store = SQLiteStore(db)
    registry = configured_registry(config, store, ManualClock(T0))
    registry.register("fraud", "v2", actor="test")
    registry.promote("fraud", "v2", "shadow", actor="test")  # shadow itself needs nothing
    with pytest.raises(Exception, match="needs a passing shadow evaluation before canary"):
        registry.promote("fraud", "v2", "canary", actor="test")
    store.write_signals([Signal("fraud", "v2", "shadow_passed", 0.0, 1.0, True, {})], T0)
    with pytest.raises(Exception, match="failed its latest shadow evaluation"):
        registry.promote("fraud", "v2", "canary", actor="test")
    store.write_signals([Signal("fraud", "v2", "shadow_passed", 1.0, 1.0, False, {})], T0 + 60)
    assert registry.promote("fraud", "v2", "canary", actor="test").status == "canary"


def test_a_monitoring_job_evaluates_the_shadow_every_window_and_the_gate_reads_it(tmp_path: Path) -> None:
    import numpy as np

    from aisre.config import AisreConfig
    from aisre.monitor.jobs.runner import MonitorRunner
    from aisre.records import InferenceRecord, Route

    hour = 3600.0
    db = tmp_path / "aisre.db"
    store = SQLiteStore(db)
    rng = np.random.default_rng(1)
    records = []
    for h in range(4):
        agree = 0.98 if h < 3 else 0.5  # the shadow disagrees with the primary in the fourth hour
        for i in range(200):
            ts = T0 + h * hour + i * 15.0
            x = float(rng.normal())
            primary = int(x > 0)
            shadow = primary if rng.random() < agree else 1 - primary
            tag = {"request_id": f"r{h}-{i}"}
            records.append(
                InferenceRecord(
                    model="fraud", version="v1", inputs={"x": x}, prediction=primary, latency_s=0.01, tags=tag, ts=ts
                )
            )
            records.append(
                InferenceRecord(
                    model="fraud",
                    version="v2",
                    inputs={"x": x},
                    prediction=shadow,
                    latency_s=0.012,
                    route=Route.SHADOW,
                    tags=tag,
                    ts=ts + 0.1,
                )
            )
    store.write_batch(records)
    job = {
        "name": "v2-shadow",
        "model": "fraud",
        "version": "v2",
        "window": "1h",
        "checks": ["shadow"],
        "reference": {"since": T0, "until": T0 + hour},
    }
    config = AisreConfig.model_validate(
        {
            "store": f"sqlite:///{db}",
            "monitors": [job],
            "evaluation": {"fraud": {"required_for": [], "shadow_required_for": ["canary"]}},
        }
    )
    runner = MonitorRunner(config, store, ManualClock(T0 + 3 * hour + 5))
    runner.run_due()
    assert runner.last_errors == []
    passed = [s.value for _, s in store.signals(model="fraud", name="shadow_passed", version="v2")]
    assert passed == [1.0, 1.0, 1.0]
    registry = configured_registry(config, store, ManualClock(T0 + 3 * hour + 10))
    registry.register("fraud", "v2", actor="test")
    assert registry.promote("fraud", "v2", "canary", actor="test").status == "canary"
    registry.promote("fraud", "v2", "candidate", actor="test")
    MonitorRunner(config, store, ManualClock(T0 + 4 * hour + 5)).run_due()
    assert [s.value for _, s in store.signals(model="fraud", name="shadow_passed", version="v2")][-1] == 0.0
    with pytest.raises(Exception, match="failed its latest shadow evaluation"):
        registry.promote("fraud", "v2", "canary", actor="test")
