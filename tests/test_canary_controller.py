"""The canary controller walks a canary through its steps: a good one becomes stable, a bad one is rolled back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisre.clock import ManualClock
from aisre.config.canaries import CanaryConfig
from aisre.config.loader import config_from_dict
from aisre.records import InferenceRecord, Label, Route, Status
from aisre.respond.canary_controller import CanaryController
from aisre.respond.incidents import Incidents
from aisre.respond.playbooks import playbook_freeze
from aisre.respond.registry import Registry
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0
MINUTE = 60.0


class Routing:
    """The weights a gateway would be given (the controller's `Actuator`), kept in order."""

    def __init__(self) -> None:
        self.weights: list[dict[str, float]] = []

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self.weights.append(weights)

    def set_breaker(self, model: str, version: str, open_: bool) -> None:  # pragma: no cover - not used here
        raise AssertionError("the canary controller does not touch breakers")


def traffic(
    store: SQLiteStore, rng: np.random.Generator, start: float, minutes: int, share: float, canary_error: float
) -> None:
    """`minutes` of traffic, `share` % of it to the canary; the canary fails `canary_error` of its requests
    and both arms are right 90% of the time (labels arrive at once)."""
    records, labels = [], []
    for m in range(minutes):
        for i in range(100):
            version = "v2" if rng.random() < share / 100 else "v1"
            failed = version == "v2" and rng.random() < canary_error
            truth = int(rng.random() < 0.5)
            prediction = truth if rng.random() < 0.9 else 1 - truth
            rid = f"{start}-{m}-{i}"
            records.append(
                InferenceRecord(
                    model="fraud",
                    version=version,
                    inputs={"x": 1.0},
                    prediction=None if failed else prediction,
                    status=Status.ERROR if failed else Status.OK,
                    route=Route.CANARY if version == "v2" else Route.PRIMARY,
                    latency_s=float(rng.lognormal(np.log(0.05), 0.2)),
                    ts=start + m * MINUTE + i * 0.5,
                    id=rid,
                )
            )
            if not failed:
                labels.append(Label(rid, truth, start + m * MINUTE))
    store.write_batch(records)
    store.add_labels(labels)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SQLiteStore, Registry, ManualClock]:
    clock = ManualClock(T0)
    store = SQLiteStore(tmp_path / "aisre.db")
    registry = Registry(store, clock=clock, frozen_by=playbook_freeze(store, clock=clock))
    registry.register("fraud", "v1", actor="test")
    registry.promote("fraud", "v1", "stable", actor="test")
    registry.register("fraud", "v2", actor="test")
    registry.promote("fraud", "v2", "canary", actor="test")
    return store, registry, clock


CONFIG = CanaryConfig(
    model="fraud",
    steps=[10, 50, 100],
    interval="30m",
    policy={"min_requests": 100, "min_labels": 50, "quality_margin": 0.05, "error_margin": 0.02},
)


def walk(
    store: SQLiteStore, registry: Registry, clock: ManualClock, canary_error: float, steps: int = 8
) -> tuple[CanaryController, Routing]:
    rng = np.random.default_rng(7)
    routing = Routing()
    controller = CanaryController(
        [CONFIG], store, registry, actuator=routing, incidents=Incidents(store, clock=clock), clock=clock
    )
    controller.tick()  # start: the first step's weights
    for _ in range(steps):
        walk_ = controller.walks.get("fraud")
        if walk_ is None:
            break
        traffic(store, rng, clock.now(), 30, walk_.percent, canary_error)
        clock.advance(30 * MINUTE)
        controller.tick()
    return controller, routing


def test_a_good_canary_walks_every_step_and_becomes_stable(setup: Any) -> None:
    store, registry, clock = setup
    controller, routing = walk(store, registry, clock, canary_error=0.0)
    assert [e.action for e in controller.events] == ["start", "advance", "promote"]
    assert routing.weights == [{"v1": 90.0, "v2": 10.0}, {"v1": 50.0, "v2": 50.0}]  # then the registry's plan
    assert registry.stable("fraud").version == "v2"
    steps = [s.labels["decision"] for _, s in store.signals(model="fraud", name="canary_step")]
    assert steps == ["start", "advance", "promote"]


def test_a_failing_canary_is_rolled_back_with_an_incident(setup: Any) -> None:
    store, registry, clock = setup
    controller, routing = walk(store, registry, clock, canary_error=0.3)
    assert [e.action for e in controller.events] == ["start", "rollback"]
    assert "error" in controller.events[-1].detail
    assert registry.stable("fraud").version == "v1"
    assert registry.get("fraud", "v2").status == "retired"
    (incident,) = Incidents(store).list()
    assert incident.title.startswith("canary v2 of fraud rolled back at 10%")


def test_a_freeze_holds_the_canary_where_it_is(setup: Any) -> None:
    from aisre.records import Signal

    store, registry, clock = setup
    store.write_signals([Signal("fraud", "*", "promotions_frozen", 1.0, None, True, {"by": "drift"})], T0)
    controller, _ = walk(store, registry, clock, canary_error=0.0, steps=4)
    actions = [e.action for e in controller.events]
    assert actions[0] == "start" and set(actions[1:]) == {"stay"}  # no more traffic to it while frozen
    assert "frozen" in controller.events[-1].detail
    assert registry.stable("fraud").version == "v1" and registry.get("fraud", "v2").status == "canary"


def test_canaries_config_is_checked_at_its_key_path() -> None:
    models = {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": ["http://127.0.0.1:9/v2"]}}}}
    for canaries, expected in [
        ([{"model": "fraud", "steps": [50, 10, 100]}], "canaries.0.steps"),
        ([{"model": "fraud", "steps": [5, 50]}], "ending at 100"),
        ([{"model": "nope"}], "canaries.0.model: unknown model 'nope'"),
        ([{"model": "fraud"}, {"model": "fraud"}], "canaries.1.model: another canary entry"),
        ([{"model": "fraud", "policy": {"alpha": 2}}], "canaries.0.policy.alpha"),
    ]:
        with pytest.raises(Exception) as info:
            config_from_dict({"models": models, "canaries": canaries})
        assert expected in str(info.value), (expected, str(info.value))
