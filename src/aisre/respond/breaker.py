"""The AI circuit breaker of one model version: closed, open, half-open - opened by errors, latency or quality.

Why a breaker that knows quality: a model that answers 200 OK with wrong predictions passes
every HTTP breaker. Here request outcomes (`record`) and quality verdicts (`set_quality`, fed
by `aisre.respond.conditions` from the store's signals and SLO reports) both open it.

States (Hystrix / resilience4j semantics, with quality added):

- closed: every request goes to the version. Each `record` updates a window of the last
  `window_requests` outcomes; an `error_rate` or `latency_p99_s` condition that holds over at
  least `min_requests` of them opens the breaker; so does any quality condition reported bad.
- open: no request goes to the version (`admit` is False: the caller serves the fallback).
  After `open_for` it turns half-open.
- half-open: `probe_share` of the requests go to the version (`admit` True for them), and their
  outcomes alone are judged: once `probes` of them are in, it closes if their error rate and
  latency are within bounds and no quality condition is bad, else it reopens with `open_for`
  doubled (up to `max_open_for`). A quality condition still bad keeps it from closing however
  good the probes are: recovery from a quality fault needs a new verdict (the next window).

Every change of state is a `Transition` (returned, and kept in `transitions`) carrying the
reason and its evidence, for the metric, the record tag and the incident timeline.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.breakers import BreakerCondition, BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Transition:
    """One change of state, with why."""

    model: str
    version: str
    before: BreakerState
    after: BreakerState
    at: float
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "from": self.before.value,
            "to": self.after.value,
            "at": self.at,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }


def nearest_rank(values: list[float], p: float) -> float:
    """numpy's `inverted_cdf` quantile: the ceil(n*p)-th smallest value (n >= 1)."""
    ordered = sorted(values)
    return ordered[min(max(math.ceil(len(ordered) * p - 1e-12) - 1, 0), len(ordered) - 1)]


class CircuitBreaker:
    """The breaker of `config.model` version `version` (see the module docstring).

    Not thread-safe by itself: the gateway calls it from its event loop; the quality evaluator
    hands verdicts over through `set_quality` from the same loop.
    """

    def __init__(
        self, config: BreakerConfig, version: str, clock: Clock = SYSTEM_CLOCK, rng: random.Random | None = None
    ):
        self.config = config
        self.version = version
        self.clock = clock
        self.rng = rng or random.Random()
        self.state = BreakerState.CLOSED
        self.transitions: list[Transition] = []
        self._outcomes: deque[tuple[bool, float | None]] = deque(maxlen=self._window())
        self._probes: list[tuple[bool, float | None]] = []
        self._quality_bad: dict[str, str] = {}  # condition key -> reason, for every bad quality condition
        self._opened_at = 0.0
        self._open_for = config.open_for_s

    @property
    def quality_keys(self) -> set[str]:
        """The keys (`conditions.condition_key`) of this breaker's signal and SLO conditions."""
        from aisre.respond.conditions import condition_key

        return {condition_key(c) for c in self.config.open_when if c.kind in ("signal", "slo")}

    def _window(self) -> int:
        sizes = [c.window_requests for c in self.config.open_when if c.kind in ("errors", "latency")]
        return max(sizes, default=1)

    # -- requests ------------------------------------------------------------------------------
    def admit(self) -> bool:
        """Whether this request may go to the version (else to the fallback)."""
        self.tick()
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return False
        return self.rng.random() < self.config.probe_share

    def record(self, ok: bool, latency_s: float | None = None) -> Transition | None:
        """The outcome of a request the version served (`admit` was True)."""
        if self.state is BreakerState.HALF_OPEN:
            self._probes.append((ok, latency_s))
            return self._judge_probes()
        if self.state is BreakerState.OPEN:
            return None  # a request admitted before the breaker opened: already judged
        self._outcomes.append((ok, latency_s))
        for condition in self.config.open_when:
            reason = _request_fault(condition, list(self._outcomes)[-condition.window_requests :])
            if reason is not None:
                return self._open(reason, {"condition": condition.kind})
        return None

    # -- quality ---------------------------------------------------------------------------------
    def set_quality(
        self, key: str, bad: bool, reason: str = "", evidence: dict[str, Any] | None = None
    ) -> Transition | None:
        """A quality condition's current verdict (`key` names it). Bad opens a closed breaker and
        keeps a half-open one from closing; good lets it close once the probes pass."""
        if key not in self.quality_keys:
            return None  # another breaker's condition: a latency breaker is not tripped by accuracy
        if not bad:
            self._quality_bad.pop(key, None)
            return self._judge_probes() if self.state is BreakerState.HALF_OPEN else None
        self._quality_bad[key] = reason or key
        if self.state is BreakerState.CLOSED:
            return self._open(reason or key, {"condition": key, **(evidence or {})})
        return None

    @property
    def quality_faults(self) -> dict[str, str]:
        return dict(self._quality_bad)

    # -- time ------------------------------------------------------------------------------------
    def tick(self) -> Transition | None:
        """Open -> half-open once `open_for` has passed."""
        now = self.clock.now()
        if self.state is BreakerState.OPEN and now - self._opened_at >= self._open_for:
            self._probes = []
            return self._move(BreakerState.HALF_OPEN, f"open for {self._open_for:g} s: probing", {})
        return None

    def force(self, state: BreakerState, reason: str) -> Transition | None:
        """Set the state by hand (the admin API, a playbook); opening resets the wait to `open_for`."""
        if state is self.state:
            return None
        if state is BreakerState.OPEN:
            self._open_for = self.config.open_for_s
            return self._open(reason, {"forced": True}, grow=False)
        if state is BreakerState.CLOSED:
            self._outcomes.clear()
            self._open_for = self.config.open_for_s
        self._probes = []
        return self._move(state, reason, {"forced": True})

    # -- internals -------------------------------------------------------------------------------
    def _judge_probes(self) -> Transition | None:
        if len(self._probes) < self.config.probes:
            return None
        probes, self._probes = self._probes, []
        for condition in self.config.open_when:
            reason = _request_fault(condition, probes, min_requests=1)
            if reason is not None:
                return self._open(f"probes failed: {reason}", {"probes": len(probes)}, grow=True)
        if self._quality_bad:  # healthy probes: keep them and wait for a good quality verdict
            self._probes = probes[-self.config.probes :]
            return None
        self._outcomes.clear()
        self._open_for = self.config.open_for_s
        return self._move(
            BreakerState.CLOSED, f"{len(probes)} probes healthy and no quality fault", {"probes": len(probes)}
        )

    def _open(self, reason: str, evidence: dict[str, Any], grow: bool = False) -> Transition | None:
        if grow:
            self._open_for = min(self._open_for * 2, self.config.max_open_for_s)
        self._opened_at = self.clock.now()
        self._probes = []
        return self._move(BreakerState.OPEN, reason, evidence)

    def _move(self, after: BreakerState, reason: str, evidence: dict[str, Any]) -> Transition:
        t = Transition(self.config.model, self.version, self.state, after, self.clock.now(), reason, evidence)
        self.state = after
        self.transitions.append(t)
        return t


def _request_fault(
    condition: BreakerCondition, outcomes: list[tuple[bool, float | None]], min_requests: int | None = None
) -> str | None:
    """Why these outcomes break `condition` (an errors or latency one), or None."""
    need = condition.min_requests if min_requests is None else min_requests
    if condition.error_rate is not None:
        if len(outcomes) < need:
            return None
        rate = sum(not ok for ok, _ in outcomes) / len(outcomes)
        if rate > condition.error_rate:
            return f"error rate {rate:.3f} > {condition.error_rate:g} over {len(outcomes)} requests"
    if condition.latency_p99_s is not None:
        latencies = [lat for ok, lat in outcomes if lat is not None]
        if len(latencies) < need:
            return None
        p99 = nearest_rank(latencies, 0.99)
        if p99 > condition.latency_p99_s:
            return f"p99 latency {p99:.3f} s > {condition.latency_p99_s:g} s over {len(latencies)} requests"
    return None
