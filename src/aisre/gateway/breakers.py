"""The AI circuit breakers of one gateway process: `breakers:` made live in the request path.

Each configured breaker becomes one `aisre.respond.breaker.CircuitBreaker` per model version it
watches. The pipeline asks `diverted(model, version)` before offering a version (an open breaker,
or a half-open one not taking this request as a probe), feeds every answer of a watched version to
`record`, and serves a diverted request from `fallback_of`: another version, or the rule function
(loaded once here, at start-up). `run` judges the breakers' quality conditions every `interval_s`
from the store (the newest signal windows, and the SLOs they name, evaluated from the per-minute
buckets) in a worker thread, and applies the verdicts on the event loop, so the breakers are only
ever touched from the loop.

Every transition is counted (`aisre_breaker_transitions_total{model,version,to}`), shown
(`aisre_breaker_state{model,version}`: 0 closed, 1 half-open, 2 open), logged, and written on an
incident (`breaker:<model>:<version>`: opened with the reason and evidence; half-open and closed
added to its timeline, whichever process saw it first). Each process keeps its own breakers:
their quality conditions read the store every process shares, so all processes reach the same
verdict within one interval; request outcomes are each process's own sample of the same traffic.
An opening also sets the routing state's breaker flag, shared through Redis when `state:` is set,
so every process diverts within a second; half-open and closed clear it. The flags set by the
admin API or a playbook take a version out of every process whatever its AI breaker says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.breakers import BreakerConfig, Fallback
from aisre.respond.breaker import BreakerState, CircuitBreaker, Transition

log = logging.getLogger("aisre.gateway")
STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class GatewayBreakers:
    """Every AI circuit breaker of `config.breakers`, keyed by (model, version)."""

    def __init__(self, config: Any, registry: CollectorRegistry | None, clock: Clock = SYSTEM_CLOCK) -> None:
        from aisre.respond.rules import load_rule

        self.clock = clock
        self.configs: dict[tuple[str, str], BreakerConfig] = {}
        self.breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self.rules: dict[str, Callable[[Any], Any]] = {}
        self.transitions: list[Transition] = []
        self.on_transition: list[Callable[[Transition], None]] = []
        for b in getattr(config, "breakers", ()):
            model = config.models.get(b.model)
            versions = [b.version] if b.version is not None else (list(model.versions) if model is not None else [])
            for version in versions:
                self.configs[(b.model, version)] = b
                self.breakers[(b.model, version)] = CircuitBreaker(b, version, clock)
            if b.fallback.rule is not None and b.fallback.rule not in self.rules:
                self.rules[b.fallback.rule] = load_rule(b.fallback.rule)  # checked at start-up already
        watched: dict[str, set[str]] = {}
        for model_name, version_name in self.breakers:
            watched.setdefault(model_name, set()).add(version_name)
        self._watched = {m: frozenset(v) for m, v in watched.items()}
        self.state_gauge = self.transitions_total = None
        if registry is not None and self.breakers:
            self.state_gauge = Gauge(
                "aisre_breaker_state",
                "AI circuit breaker state per model version: 0 closed, 1 half-open, 2 open.",
                ["model", "version"],
                registry=registry,
            )
            self.transitions_total = Counter(
                "aisre_breaker_transitions",
                "AI circuit breaker transitions, by the state entered.",
                ["model", "version", "to"],
                registry=registry,
            )
            for model, version in self.breakers:
                self.state_gauge.labels(model, version).set(0)

    def __bool__(self) -> bool:
        return bool(self.breakers)

    def watched(self, model: str) -> frozenset[str]:
        """The versions of `model` an AI breaker watches: chosen by weight even while diverted, so their
        share of traffic goes to their breaker's configured fallback (not silently to the others)."""
        return self._watched.get(model, frozenset())

    # -- the request path ------------------------------------------------------------------------
    def diverted(self, model: str, version: str) -> bool:
        """True when this request must not go to `version` (open, or half-open and not a probe)."""
        breaker = self.breakers.get((model, version))
        if breaker is None:
            return False
        before = breaker.state
        admitted = breaker.admit()
        if breaker.state is not before:
            self._changed(breaker.transitions[-1])
        return not admitted

    def fallback_of(self, model: str, version: str) -> Fallback | None:
        config = self.configs.get((model, version))
        return None if config is None else config.fallback

    def rule(self, dotted: str) -> Callable[[Any], Any]:
        return self.rules[dotted]

    def record(self, model: str, version: str, ok: bool, latency_s: float | None) -> None:
        """The outcome of a request `version` served (not a fallback's, not a shadow's)."""
        breaker = self.breakers.get((model, version))
        if breaker is None:
            return
        transition = breaker.record(ok, latency_s)
        if transition is not None:
            self._changed(transition)

    # -- quality ---------------------------------------------------------------------------------
    def quality_verdicts(self, store: Any, slos: list[Any], now: float) -> list[tuple[tuple[str, str], Any]]:
        """Every quality condition's verdict now (runs in a worker thread: reads the store only)."""
        from aisre.respond.conditions import Held, judge
        from aisre.slo.evaluate import evaluate

        named = {c.slo for b in self.configs.values() for c in b.open_when if c.slo is not None}
        reports = {}
        if named:
            wanted = [s for s in slos if s.name in named]
            reports = {r.name: r for r in evaluate(wanted, store, _Fixed(now))}
        held = self._held = getattr(self, "_held", {})
        out = []
        for key, config in self.configs.items():
            for condition in config.open_when:
                if condition.kind not in ("signal", "slo"):
                    continue
                verdict = judge(condition, key[0], key[1], store, reports, now)
                tracker = held.setdefault(key, Held())
                out.append((key, tracker.apply(verdict, condition.for_s, now)))
        return out

    def apply(self, verdicts: list[tuple[tuple[str, str], Any]]) -> None:
        """Hand the verdicts to their breakers (on the event loop)."""
        for key, verdict in verdicts:
            breaker = self.breakers.get(key)
            if breaker is None:
                continue
            transition = breaker.set_quality(verdict.key, verdict.bad, verdict.reason, verdict.evidence)
            if transition is not None:
                self._changed(transition)

    async def run(self, store: Any, slos: list[Any], interval_s: float) -> None:
        """Judge the quality conditions every `interval_s` (and move open breakers to half-open on
        time) until cancelled; a failed round is logged."""
        judges_quality = any(c.kind in ("signal", "slo") for b in self.configs.values() for c in b.open_when)
        while True:
            try:
                if judges_quality:
                    verdicts = await asyncio.to_thread(self.quality_verdicts, store, slos, self.clock.now())
                    self.apply(verdicts)
                for breaker in self.breakers.values():  # open -> half-open on time
                    transition = breaker.tick()
                    if transition is not None:
                        self._changed(transition)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the store busy, an SLO broken: try again next round
                log.exception("breakers: judging quality failed")
            await asyncio.sleep(interval_s)

    # -- transitions -----------------------------------------------------------------------------
    def _changed(self, t: Transition) -> None:
        self.transitions.append(t)
        log.warning("breaker %s %s: %s -> %s (%s)", t.model, t.version, t.before.value, t.after.value, t.reason)
        if self.state_gauge is not None and self.transitions_total is not None:
            self.state_gauge.labels(t.model, t.version).set(STATE_VALUE[t.after])
            self.transitions_total.labels(t.model, t.version, t.after.value).inc()
        for callback in self.on_transition:
            try:
                callback(t)
            except Exception:  # noqa: BLE001 - an incident store or Redis down never breaks serving
                log.exception("breaker %s %s: transition hook failed", t.model, t.version)


class _Fixed:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now


def incident_hook(store: Any, clock: Clock = SYSTEM_CLOCK) -> Callable[[Transition], None]:
    """Writes each transition on the breaker's incident (opened on the first opening, idempotent)."""
    from aisre.respond.incidents import Incidents

    incidents = Incidents(store, clock=clock)

    def hook(t: Transition) -> None:
        trigger = f"breaker:{t.model}:{t.version}"
        if t.after is BreakerState.OPEN:
            incidents.open(
                f"breaker opened on {t.model} {t.version}: {t.reason}",
                actor="breaker",
                model=t.model,
                version=t.version,
                trigger=trigger,
                evidence={"reason": t.reason, **{k: str(v) for k, v in t.evidence.items()}},
            )
            return
        incident = incidents.find_open(trigger)
        if incident is not None:
            kind = "outcome" if t.after is BreakerState.CLOSED else "evidence"
            incidents.add_event(incident.id, kind, f"breaker {t.after.value}: {t.reason}", actor="breaker")

    return hook
