"""Routing, balancing and retry-budget policies, driven by a manual clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from aisre.clock import ManualClock
from aisre.config.gateway import EjectionConfig, RetryConfig
from aisre.config.loader import config_from_dict
from aisre.gateway.balancer import Balancer
from aisre.gateway.retry import RetryBudget
from aisre.gateway.routing import RoutingState


def _routing(**model) -> RoutingState:
    cfg = config_from_dict(
        {
            "models": {
                "m": {
                    "protocol": "oip",
                    "versions": {
                        "v1": {"replicas": ["http://a"]},
                        "v2": {"replicas": ["http://b"]},
                        "v3": {"replicas": ["http://c"]},
                    },
                    **model,
                }
            }
        }
    )
    return RoutingState(cfg.models, random.Random(7))


def test_weighted_split_follows_the_weights():
    routing = _routing(route={"v1": 90, "v2": 10})
    counts = Counter(routing.choose("m") for _ in range(20_000))
    assert counts["v2"] / 20_000 == pytest.approx(0.10, abs=0.01)
    assert counts["v3"] == 0


def test_sticky_keys_always_land_on_the_same_version():
    routing = _routing(route={"v1": 50, "v2": 50})
    for key in ("alice", "bob", "carol", "dave"):
        assert len({routing.choose("m", key) for _ in range(50)}) == 1
    spread = Counter(routing.choose("m", f"user-{i}") for i in range(4000))
    assert spread["v1"] / 4000 == pytest.approx(0.5, abs=0.05)


def test_open_breaker_moves_traffic_and_fallbacks_skip_it():
    routing = _routing(route={"v1": 90, "v2": 10}, fallback=["v3", "v2"])
    routing.open_breaker("m", "v1")
    assert {routing.choose("m") for _ in range(200)} == {"v2"}
    assert routing.models["m"].fallbacks("v1") == ["v3", "v2"]
    routing.open_breaker("m", "v3")
    assert routing.models["m"].fallbacks("v1") == ["v2"]


def test_shadow_is_sampled_and_never_the_served_version():
    routing = _routing(route={"v1": 100}, shadow={"version": "v2", "sample": 0.2})
    shadows = [routing.shadow_for("m", "v1") for _ in range(10_000)]
    assert shadows.count("v2") / 10_000 == pytest.approx(0.2, abs=0.02)
    assert routing.shadow_for("m", "v2") is None


def _balancer(n: int = 3, **ejection) -> tuple[Balancer, ManualClock]:
    clock = ManualClock()
    cfg = EjectionConfig(**({"consecutive_failures": 3, "base_s": 10, "max_s": 60} | ejection))
    return Balancer([f"http://r{i}" for i in range(n)], cfg, clock.monotonic, random.Random(1)), clock


def test_power_of_two_choices_prefers_the_less_loaded_faster_replica():
    b, _ = _balancer()
    slow, busy, good = b.replicas
    slow.ewma_latency_s, busy.outstanding = 0.5, 20
    picks = Counter(b.pick().url for _ in range(3000))
    assert picks[good.url] > picks[slow.url] and picks[good.url] > picks[busy.url]
    assert picks[good.url] / 3000 > 0.6


def test_one_slow_answer_does_not_starve_a_replica_forever():
    b, clock = _balancer()
    slow, *fast = b.replicas
    b.started(slow)
    b.finished(slow, 0.2, ok=True)  # one slow answer: EWMA 0.067 s against 0.002 s for the others
    for _ in range(50):
        for r in fast:
            b.started(r)
            b.finished(r, 0.002, ok=True)
        clock.advance(0.02)  # one second of steady traffic elsewhere
    assert slow.latency(clock.monotonic()) < 0.067 / 2
    picks = Counter(b.pick().url for _ in range(300))
    assert picks[slow.url] == 0, "while its decayed EWMA is still above the others', it waits"
    for _ in range(150):  # three more seconds with the fast replicas fed, the slow one idle
        for r in fast:
            b.finished(r, 0.002, ok=True)
        clock.advance(0.02)
    assert Counter(b.pick().url for _ in range(300))[slow.url] > 50, "idle long enough, it is probed again"
    b.started(slow)
    b.finished(slow, 0.002, ok=True)  # the probe answers fast: its EWMA is a normal one again
    assert slow.latency(clock.monotonic()) < 0.004


def test_consecutive_failures_eject_with_backoff_and_the_replica_returns():
    b, clock = _balancer()
    bad = b.replicas[0]
    for _ in range(3):
        b.started(bad)
        b.finished(bad, 0.01, ok=False)
    assert not bad.admitted(clock.monotonic()) and b.ejections == 1
    assert all(b.pick().url != bad.url for _ in range(200))
    clock.advance(10.1)
    assert bad.admitted(clock.monotonic())
    for _ in range(3):  # fails again at once: ejected twice as long
        b.finished(bad, 0.01, ok=False)
    clock.advance(10.1)
    assert not bad.admitted(clock.monotonic())
    clock.advance(10)
    assert bad.admitted(clock.monotonic())


def test_a_healthy_health_check_readmits_early_and_ejection_is_capped():
    b, clock = _balancer(2, max_ejected_share=0.5)
    first, second = b.replicas
    for _ in range(3):
        b.finished(first, 0.01, ok=False)
        b.finished(second, 0.01, ok=False)
    assert b.admitted_count() == 1  # never more than half of the pool ejected
    b.health(first, True)
    assert b.admitted_count() == 2


def test_with_every_replica_down_the_balancer_still_tries_one():
    b, _ = _balancer(2)
    for r in b.replicas:
        b.health(r, False)
    assert b.pick() is not None
    assert b.pick(exclude={r.url for r in b.replicas}) is None


def test_retry_budget_caps_retries_at_the_ratio_of_traffic():
    clock = ManualClock()
    budget = RetryBudget(RetryConfig(budget_ratio=0.2, min_per_second=0.0), clock.monotonic)
    budget.tokens = 0.0
    allowed = 0
    for _ in range(1000):
        budget.on_request()
        allowed += budget.try_spend()
    assert allowed == pytest.approx(200, abs=2)
    assert budget.refused == 1000 - allowed
