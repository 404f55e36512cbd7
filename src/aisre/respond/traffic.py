"""What the registry means for traffic: the route weights and the shadow a gateway should serve.

The stable version gets what the canaries leave (100 minus their weights, in percent); each canary gets its
configured weight (the weight `route:` gives it in aisre.yaml, else `DEFAULT_CANARY_PERCENT`); candidates and
retired versions get none; a `shadow` version is mirrored. Only versions the gateway can serve (its config
names them) are routed: a registry with no served stable version leaves the gateway's routing alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from aisre.store.registry import ModelVersion

__all__ = ["DEFAULT_CANARY_PERCENT", "TrafficPlan", "traffic_plan"]

#: A canary's share of traffic, in percent, when the config gives it no route weight.
DEFAULT_CANARY_PERCENT = 10.0


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    """Route weights (version -> percent, summing to 100), the stable (primary) version and the shadow."""

    weights: dict[str, float]
    stable: str
    shadow: str | None


def traffic_plan(
    versions: Sequence[ModelVersion],
    served: Collection[str],
    canary_weights: Mapping[str, float] | None = None,
) -> TrafficPlan | None:
    """The plan for one model's registered `versions`, restricted to the `served` ones; None without a served
    stable version. `canary_weights` (version -> percent) overrides `DEFAULT_CANARY_PERCENT` per version."""
    status = {v.version: v.status for v in versions if v.version in served}
    stable = next((v for v, s in status.items() if s == "stable"), None)
    if stable is None:
        return None
    canaries = [v for v, s in status.items() if s == "canary"]
    weights: dict[str, float] = {}  # only routed versions: a breaker's last resort must not pick a retired one
    for name in canaries:
        weights[name] = float((canary_weights or {}).get(name, DEFAULT_CANARY_PERCENT))
    given = sum(weights[c] for c in canaries)
    if given >= 100.0:  # canaries asked for everything: scale them so the stable version keeps a tenth
        for name in canaries:
            weights[name] *= 90.0 / given
        given = 90.0
    weights = {stable: 100.0 - given, **weights}
    shadow = next((v for v, s in status.items() if s == "shadow"), None)
    return TrafficPlan(weights, stable, shadow)
