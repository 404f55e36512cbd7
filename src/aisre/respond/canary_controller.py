"""The canary controller: walks a canary through its steps, analysing each one, and promotes or rolls back.

`CanaryController.tick()` (run by the SLO judge's thread after each tick, like the playbooks) looks
at each model of `canaries:`. When the registry has a `canary` version beside its `stable` one, the
canary starts at the first step (route weights `{stable: 100 - p, canary: p}` through the
`Actuator`). Every `interval`, once the step has lasted that long, the records of the step are
analysed (`aisre.respond.canary.analyze_canary_in_store`, with the policy of the config; sequential
by default, so analysing a step many times keeps the false-rollback rate at alpha) and
`next_action` decides:

- advance: the next step's weights;
- promote (after the last step below 100%: at 100% nothing is left to compare with):
  `Registry.promote(canary, "stable")`, which the registry refuses while an SLO's budget policy
  or a playbook freezes promotions (a freeze also makes the analysis hold, so the walk stays);
- rollback: `Registry.rollback` (the canary retired, stable gets everything back) and an incident
  with the analysis as evidence;
- stay: nothing (more traffic needed).

Each decision is a `canary_step` signal (value: the step's percent; labels: version, decision), so a
restarted controller resumes at the step it was at, and dashboards show the walk.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.canaries import CanaryConfig
from aisre.records import Signal

log = logging.getLogger("aisre.respond")
STEP_SIGNAL = "canary_step"


@dataclass(frozen=True)
class CanaryEvent:
    model: str
    canary: str
    at: float
    action: str  # start, advance, promote, rollback, stay, held, error
    percent: float
    detail: str


@dataclass
class _Walk:
    canary: str
    stable: str
    percent: float
    step_started: float
    last_analysis: float


class CanaryController:
    """Drives the `canaries:` of a config (see the module docstring)."""

    def __init__(
        self,
        canaries: list[CanaryConfig],
        store: Any,
        registry: Any,
        *,
        actuator: Any = None,
        incidents: Any = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.canaries = list(canaries)
        self.store = store
        self.registry = registry
        self.actuator = actuator
        self.incidents = incidents
        self.clock = clock
        self.walks: dict[str, _Walk] = {}
        self.events: list[CanaryEvent] = []

    def tick(self) -> list[CanaryEvent]:
        out: list[CanaryEvent] = []
        for config in self.canaries:
            try:
                out += self._tick_one(config)
            except Exception as exc:  # noqa: BLE001 - one model's failure never stops the others
                log.exception("canary %s failed", config.model)
                out.append(
                    CanaryEvent(config.model, "", self.clock.now(), "error", 0.0, f"{type(exc).__name__}: {exc}")
                )
        self.events += out
        return out

    def _tick_one(self, config: CanaryConfig) -> list[CanaryEvent]:
        now = self.clock.now()
        model = config.model
        versions = self.registry.list(model)
        canary = next((v.version for v in versions if v.status == "canary"), None)
        stable = self.registry.stable(model)
        walk = self.walks.get(model)
        if canary is None or stable is None:
            self.walks.pop(model, None)
            return []
        if walk is None or walk.canary != canary:
            percent = self._resumed_percent(model, canary, config) or config.steps[0]
            walk = self.walks[model] = _Walk(canary, stable.version, percent, now, now)
            self._weights(model, walk)
            return [self._event(walk, model, "start", f"canary {canary} at {percent:g}% beside {stable.version}")]
        if now - walk.last_analysis < config.interval_s or now - walk.step_started < config.interval_s:
            return []
        walk.last_analysis = now
        return [self._analyse(config, walk, now)]

    def _analyse(self, config: CanaryConfig, walk: _Walk, now: float) -> CanaryEvent:
        from aisre.respond.canary import CanaryPolicy, analyze_canary_in_store, next_action

        model = config.model
        frozen_by = self.registry.frozen_by(model, walk.canary) if self.registry.frozen_by is not None else []
        analysis = analyze_canary_in_store(
            self.store,
            model,
            canary=walk.canary,
            stable=walk.stable,
            since=walk.step_started,
            until=now,
            policy=CanaryPolicy(**config.policy.model_dump()),
            sensitive=config.sensitive,
            frozen=bool(frozen_by),
        )
        action = next_action(config.steps, walk.percent, analysis.decision)
        why = "; ".join(analysis.reasons) or analysis.decision
        if action.action == "advance" and action.weight_pct >= 100.0:
            # the step before 100% passed: at 100% no stable traffic is left to compare, so promote now
            action = next_action(config.steps, 100.0, "promote")
        if action.action == "advance":
            walk.percent, walk.step_started = action.weight_pct, now
            self._weights(model, walk)
            return self._event(walk, model, "advance", f"{why}: now {action.weight_pct:g}%")
        if action.action == "promote":
            try:
                self.registry.promote(model, walk.canary, "stable", actor="canary-controller", reason=why)
            except Exception as exc:  # noqa: BLE001 - frozen, gated: hold at the last step, say why
                return self._event(walk, model, "held", f"promotion refused: {exc}")
            self.walks.pop(model, None)
            return self._event(walk, model, "promote", f"{walk.canary} is stable: {why}")
        if action.action == "rollback":
            result = self.registry.rollback(model, actor="canary-controller", reason=why)
            self.walks.pop(model, None)
            self._incident(model, walk, why, analysis.to_dict())
            return self._event(walk, model, "rollback", f"{why}; {result.to_dict()}")
        return self._event(walk, model, "stay", why)

    # -- effects -----------------------------------------------------------------------------------
    def _weights(self, model: str, walk: _Walk) -> None:
        if self.actuator is None:
            return
        self.actuator.set_weights(model, {walk.stable: 100.0 - walk.percent, walk.canary: walk.percent})

    def _event(self, walk: _Walk, model: str, action: str, detail: str) -> CanaryEvent:
        now = self.clock.now()
        labels = {"version": walk.canary, "decision": action}
        self.store.write_signals(
            [Signal(model, walk.canary, STEP_SIGNAL, walk.percent, None, action == "rollback", labels)], now
        )
        log.info("canary %s %s: %s at %g%%: %s", model, walk.canary, action, walk.percent, detail)
        return CanaryEvent(model, walk.canary, now, action, walk.percent, detail)

    def _resumed_percent(self, model: str, canary: str, config: CanaryConfig) -> float | None:
        """The step a previous controller left this canary at (its newest `canary_step` signal)."""
        rows = self.store.signals(model=model, name=STEP_SIGNAL, version=canary)
        if not rows:
            return None
        value = rows[-1][1].value
        return value if value in config.steps else None

    def _incident(self, model: str, walk: _Walk, why: str, evidence: dict[str, Any]) -> None:
        if self.incidents is None:
            return
        try:
            self.incidents.open(
                f"canary {walk.canary} of {model} rolled back at {walk.percent:g}%: {why}",
                actor="canary-controller",
                model=model,
                version=walk.canary,
                trigger=f"canary:{model}:{walk.canary}",
                evidence={"analysis": _jsonable(evidence), "walk": asdict(walk)},
            )
        except Exception:  # noqa: BLE001
            log.exception("canary %s: cannot open the rollback incident", model)


def _jsonable(data: Any) -> Any:
    import orjson

    return orjson.loads(orjson.dumps(data, default=str, option=orjson.OPT_SERIALIZE_NUMPY))
