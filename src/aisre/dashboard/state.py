"""Route weights and breaker states per model version: live from the serving gateway, else inferred.

With the gateway (`aisre serve`), its routing state gives the weights in force (a playbook or the admin
API may have moved them) and its `breakers` the AI circuit breakers' states. The dashboard alone
(`aisre dashboard`) has neither: weights are the registry's traffic plan (what a gateway following it
routes; the config's `route:` for a model without a registered stable version), and a breaker's state from the incident
log, where every breaker transition is written (`aisre.gateway.breakers.incident_hook`): an unresolved
`breaker:<model>:<version>` incident whose newest breaker event says closed/half_open gives that state,
otherwise open; no such incident means it has not opened since the last one was resolved (closed).
With `state.url` (Redis, shared by the gateway processes), the alone dashboard reads the weights and
breaker flags in force from it, as a gateway process does; when Redis does not answer it says so in
the breaker's `reason` and falls back to the above.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aisre.config import AisreConfig
from aisre.errors import StateUnavailableError
from aisre.gateway.registry_sync import canary_weights
from aisre.respond.incidents import Incidents
from aisre.respond.registry import Registry
from aisre.respond.traffic import traffic_plan

log = logging.getLogger("aisre.dashboard")


def shared_routing(
    config: AisreConfig, models: list[str]
) -> dict[str, tuple[dict[str, float], dict[str, bool]]] | None:
    """{model: (weights, breaker flags)} from the shared state (Redis), or None when it is not configured or
    does not answer. One short-lived connection per call, from the calling (worker) thread."""
    if not config.state.url:
        return None
    from aisre.gateway.shared_state import RedisState

    async def read() -> dict[str, tuple[dict[str, float], dict[str, bool]]]:
        state = RedisState(
            config.state.url or "",
            timeout_s=max(config.state.timeout_s, 0.5),
            connect_timeout_s=0.5,
            failures_to_trip=1,
        )
        try:
            return {m: (await state.get_route_weights(m), await state.breakers(m)) for m in models}
        finally:
            await state.close()

    try:
        return asyncio.run(read())
    except (StateUnavailableError, OSError) as exc:
        log.warning("dashboard: the shared state (Redis) did not answer: %s", exc)
        return None


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
        self.shared: dict[str, tuple[dict[str, float], dict[str, bool]]] | None = None
        self.shared_failed = False

    def refresh_shared(self, models: list[str]) -> None:
        """Alone with `state.url`: read the shared weights and breaker flags once for this answer."""
        if self.live is None and self.config.state.url:
            self.shared = shared_routing(self.config, models)
            self.shared_failed = self.shared is None

    def weights(self, model: str) -> dict[str, float]:
        if self.live is not None and model in self.live.routing.models:
            return dict(self.live.routing.models[model].weights)
        mcfg = self.config.models.get(model)
        if self.shared is not None and self.shared.get(model, ({}, {}))[0]:
            return dict(self.shared[model][0])
        if mcfg is None:
            return {}
        # What a gateway following the registry routes (`aisre.gateway.registry_sync`); the config without one.
        plan = traffic_plan(self.registry.list(model), set(mcfg.versions), canary_weights(mcfg))
        return mcfg.weights if plan is None else {v: plan.weights.get(v, 0.0) for v in mcfg.versions}

    def routing_open(self, model: str) -> set[str]:
        """Versions taken out by the routing state's breaker flag (admin API, playbook, shared state)."""
        if self.live is not None and model in self.live.routing.models:
            return set(self.live.routing.models[model].open_breakers)
        if self.shared is not None and model in self.shared:
            return {v for v, flag in self.shared[model][1].items() if flag}
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
        state = self._from_incidents(model, version)
        if flagged and state["state"] != "open":
            state = {"state": "open", "since": None, "reason": "taken out of routing (shared state)"}
        elif self.shared_failed:
            state["reason"] = (
                f"{state['reason'] or state['state']} (from the incident log: the shared state did not answer)"
            )
        return {**state, "fallback": fallback}

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
