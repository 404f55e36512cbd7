"""Routing state: which version serves a request (weighted split, sticky, shadow, fallback).

One `RoutingState` per gateway process holds every model's weights, shadow, fallback
chain and breaker flags. It is the only thing that flows back into the gateway from the
rest of aisre (respond's playbooks set weights and open breakers through it).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from aisre.config.gateway import ModelConfig


@dataclass
class ModelRoute:
    weights: dict[str, float]
    shadow_version: str | None = None
    shadow_sample: float = 0.0
    fallback: list[str] = field(default_factory=list)
    sticky: str | None = None
    open_breakers: set[str] = field(default_factory=set)

    def choose(self, sticky_key: str | None, rng: random.Random, keep: frozenset[str] = frozenset()) -> str:
        """A version by weight; the same sticky key always lands on the same version. Versions in `keep`
        are chosen by weight even with their breaker flag set (their own breaker's fallback serves
        their share, as configured)."""
        closed_out = self.open_breakers - keep
        live = {v: w for v, w in self.weights.items() if w > 0 and v not in closed_out}
        if not live:
            # Every weighted version's breaker is open: any closed version beats none (a version
            # at weight 0 is typically the stable one); if all are open, the caller's chain decides.
            closed = [v for v in self.weights if v not in closed_out]
            live = {closed[0]: 1.0} if closed else {v: w for v, w in self.weights.items() if w > 0}
            live = live or dict(self.weights)
        total = sum(live.values())
        if sticky_key is not None:
            point = (zlib.crc32(sticky_key.encode()) / 2**32) * total
        else:
            point = rng.random() * total
        acc = 0.0
        for version, weight in live.items():
            acc += weight
            if point < acc:
                return version
        return next(reversed(live))

    def fallbacks(self, failed: str) -> list[str]:
        return [v for v in self.fallback if v != failed and v not in self.open_breakers]


class RoutingState:
    def __init__(self, models: Mapping[str, ModelConfig], rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.models: dict[str, ModelRoute] = {}
        for name, m in models.items():
            self.models[name] = ModelRoute(
                weights=m.weights,
                shadow_version=m.shadow.version if m.shadow else None,
                shadow_sample=m.shadow.sample if m.shadow else 0.0,
                fallback=list(m.fallback),
                sticky=m.sticky,
            )

    def choose(self, model: str, sticky_key: str | None = None, keep: frozenset[str] = frozenset()) -> str:
        return self.models[model].choose(sticky_key, self.rng, keep)

    def shadow_for(self, model: str, served: str) -> str | None:
        """The shadow version to mirror this request to, after sampling; never the served one."""
        route = self.models[model]
        if route.shadow_version is None or route.shadow_version == served:
            return None
        return route.shadow_version if self.rng.random() < route.shadow_sample else None

    def set_weights(self, model: str, weights: Mapping[str, float]) -> None:
        self.models[model].weights = dict(weights)

    def open_breaker(self, model: str, version: str) -> None:
        self.models[model].open_breakers.add(version)

    def close_breaker(self, model: str, version: str) -> None:
        self.models[model].open_breakers.discard(version)

    def breaker_open(self, model: str, version: str) -> bool:
        return version in self.models[model].open_breakers
