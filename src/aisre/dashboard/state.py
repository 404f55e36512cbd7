"""Route weights and breaker states per model version: live from the serving gateway, else inferred.

With the gateway (`aisre serve`), its routing state gives the weights in force (a playbook or the admin
API may have moved them) and its `breakers` the AI circuit breakers' states. The dashboard alone
(`aisre dashboard`) has neither: weights are the registry's traffic plan (what a gateway following it
routes; the config's `route:` for a model without a registered stable version), and a breaker's state from the incident
log, where every breaker transition is written (`aisre.gateway.breakers.incident_hook`): an unresolved
`breaker:<model>:<version>` incident whose newest breaker event says closed/half_open gives that state,
otherwise open; no such incident means it has not opened since the last one was resolved (closed).
"""

from __future__ import annotations

from typing import Any

from aisre.config import AisreConfig
from aisre.gateway.registry_sync import canary_weights
from aisre.respond.incidents import Incidents
from aisre.respond.registry import Registry
from aisre.respond.traffic import traffic_plan


def _fallback_text(fallback: Any) -> str | None:
    if fallback is None:
        return None
    if getattr(fallback, "rule", None):
        return f"rule:{fallback.rule}"
    if getattr(fallback, "version", None):
        return f"version:{fallback.version}"
    return str(fallback)


def breaker_configs(config: AisreConfig) -> dict[tuple[str, str], Any]:
    """(model, version) -> its BreakerConfig, as the gateway builds them."""
    out: dict[tuple[str, str], Any] = {}
    for b in config.breakers:
        model = config.models.get(b.model)
        versions = [b.version] if b.version is not None else (list(model.versions) if model is not None else [])
        for version in versions:
            out[(b.model, version)] = b
    return out


class RouteView:
    """Weights and breakers for the overview; `live` is an `aisre.gateway.core.Gateway` or None."""

    def __init__(self, config: AisreConfig, incidents: Incidents, registry: Registry, live: Any = None) -> None:
        self.config = config
        self.incidents = incidents
        self.registry = registry
        self.live = live
        self.breakers = breaker_configs(config)

    def weights(self, model: str) -> dict[str, float]:
        if self.live is not None and model in self.live.routing.models:
            return dict(self.live.routing.models[model].weights)
        mcfg = self.config.models.get(model)
        if mcfg is None:
            return {}
        # What a gateway following the registry routes (`aisre.gateway.registry_sync`); the config without one.
        plan = traffic_plan(self.registry.list(model), set(mcfg.versions), canary_weights(mcfg))
        return mcfg.weights if plan is None else {v: plan.weights.get(v, 0.0) for v in mcfg.versions}

    def routing_open(self, model: str) -> set[str]:
        """Versions taken out by the routing state's breaker flag (admin API, playbook, shared state)."""
        if self.live is not None and model in self.live.routing.models:
            return set(self.live.routing.models[model].open_breakers)
        return set()

    def breaker(self, model: str, version: str) -> dict[str, Any] | None:
        config = self.breakers.get((model, version))
        flagged = version in self.routing_open(model)
        if config is None and not flagged:
            return None
        fallback = _fallback_text(None if config is None else config.fallback)
        if self.live is not None:
            breaker = self.live.breakers.breakers.get((model, version))
            if breaker is not None:
                last = breaker.transitions[-1] if breaker.transitions else None
                state = breaker.state.value
                if flagged and state == "closed":
                    return {"state": "open", "since": None, "reason": "taken out of routing", "fallback": fallback}
                return {
                    "state": state,
                    "since": None if last is None else last.at,
                    "reason": None if last is None else last.reason,
                    "fallback": fallback,
                }
            return {"state": "open" if flagged else "closed", "since": None, "reason": None, "fallback": fallback}
        return {**self._from_incidents(model, version), "fallback": fallback}

    def _from_incidents(self, model: str, version: str) -> dict[str, Any]:
        try:
            incident = self.incidents.find_open(f"breaker:{model}:{version}")
        except Exception:  # noqa: BLE001 - no incident tables yet, or unreadable: say so, do not fail the page
            return {"state": "unknown", "since": None, "reason": "the incident log cannot be read"}
        if incident is None:
            return {"state": "closed", "since": None, "reason": None}
        full = self.incidents.get(incident.id)
        state, since, reason = "open", incident.opened_at, incident.title
        for event in full.events:
            if event.actor != "breaker":
                continue
            if event.summary.startswith("breaker closed"):
                state, since, reason = "closed", event.at, event.summary
            elif event.summary.startswith("breaker half_open"):
                state, since, reason = "half_open", event.at, event.summary
            elif event.kind in ("trigger", "retrigger"):
                state, since, reason = "open", event.at, event.summary
        return {"state": state, "since": since, "reason": reason}
