"""Keeps a gateway's routing in step with the model registry, wherever the registry was changed.

A change made through the admin API is applied at once (and pushed through Redis to the other processes,
as any weight change is). A change made elsewhere, e.g. `aisre models promote` against the store with no
gateway running in that process, is found by polling the registry's revision (the last history sequence
number: one indexed read) every `interval_s` seconds; when it moved, every served model's plan is re-read
and a model whose plan differs from the one last applied is re-routed. Each gateway process polls the store
itself, so no message has to reach it.

What a plan sets (`aisre.respond.traffic`): the stable version gets the primary weight, canaries their
configured weight, a shadow version is mirrored; a model the registry has no served stable version for
keeps the routing its config gives it. A weight set by hand (`PUT /admin/models/{model}/route`, a playbook
shifting traffic to a fallback) stays until that model's plan changes: a change to another model, or one that
leaves this model's plan as it was (registering a candidate), does not undo it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aisre.respond.registry import Registry
from aisre.respond.traffic import TrafficPlan, traffic_plan

log = logging.getLogger("aisre.gateway")
DEFAULT_INTERVAL_S = 2.0

__all__ = ["DEFAULT_INTERVAL_S", "RegistryFollower", "canary_weights"]


def canary_weights(model_config: Any) -> dict[str, float]:
    """The percent of traffic the config's `route:` gives each non-primary version (its canary weight)."""
    weights = model_config.weights
    total = sum(weights.values())
    primary = max(weights, key=weights.get)
    return {v: 100.0 * w / total for v, w in weights.items() if v != primary and w > 0 and total > 0}


class RegistryFollower:
    """Applies the registry's plans to one gateway's routing state; polls for changes made elsewhere."""

    def __init__(self, gateway: Any, registry: Registry, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.gw = gateway
        self.registry = registry
        self.interval_s = interval_s
        self.revision = -1  # the registry revision last applied; -1: never
        self._applied: dict[str, TrafficPlan] = {}  # per model, the plan last applied
        self._task: asyncio.Task[None] | None = None

    def plan(self, model: str) -> TrafficPlan | None:
        """The registry's plan for a served model (None: it has no served stable version)."""
        config = self.gw.config.models[model]
        return traffic_plan(self.registry.list(model), set(config.versions), canary_weights(config))

    async def apply(self, model: str, force: bool = False) -> TrafficPlan | None:
        """Route `model` as the registry says: when its plan changed since last applied, or always with `force`
        (an operator's promote or rollback of this model). No-op without a plan."""
        plan = await asyncio.to_thread(self.plan, model)
        if plan is None or (not force and self._applied.get(model) == plan):
            return plan
        self._applied[model] = plan
        route = self.gw.routing.models[model]
        if route.weights != plan.weights:
            await self.gw.set_weights(model, plan.weights)
        route.shadow_version = plan.shadow
        if plan.shadow is not None and route.shadow_sample <= 0:
            route.shadow_sample = 1.0  # a shadow the config did not sample: mirror every request
        primary = getattr(self.gw, "_primary", None)
        if isinstance(primary, dict):  # which version records call `primary` (the rest are `canary`)
            primary[model] = plan.stable
        return plan

    async def poll(self) -> bool:
        """Apply every served model's plan if the registry changed since the last poll; True when it did."""
        revision = await asyncio.to_thread(self.registry.revision)
        if revision == self.revision:
            return False
        for model in self.gw.routing.models:
            await self.apply(model)
        self.revision = revision
        return True

    async def start(self) -> None:
        """Apply the registry now (so a restarted gateway serves the registry's stable version), then poll."""
        await self.poll()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 - a locked or missing store must not stop the gateway; retried next tick
                log.warning("cannot follow the model registry; retrying in %.1f s", self.interval_s, exc_info=True)
