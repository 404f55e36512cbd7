"""The `canaries:` section: progressive delivery judged on quality, not only on errors (Flagger-style steps).

    canaries:
      - model: fraud
        steps: [5, 25, 50, 100]       # percent of traffic to the canary; 100 = make it the stable version
        interval: 10m                 # how often a step is analysed (and the least time spent at a step)
        sensitive: tags.segment       # optional: fairness of each arm by this field (inputs.X or tags.X)
        policy: {alpha: 0.05, sequential: true, min_requests: 200, min_labels: 100}

The version the registry calls `canary` (and its `stable` one) are compared by
`aisre.respond.canary.analyze_canary_in_store` over the records of the current step: promote moves
to the next step (or, after the last, makes the canary stable through the registry, which refuses
while an SLO or playbook freezes promotions), hold stays, rollback sends everything back to stable.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from aisre.config.base import Section
from aisre.config.slo import Duration, parse_duration


class CanaryPolicyConfig(Section):
    """`aisre.respond.canary.CanaryPolicy`'s fields; `sequential` defaults to true here, because a
    controller analyses the same step again and again (mSPRT keeps the false-rollback rate at alpha)."""

    alpha: float = Field(
        0.05, gt=0, lt=1, description="Family-wise false-rollback rate, and each non-inferiority test's level."
    )
    correction: str = Field(
        "holm",
        pattern="^(holm|bonferroni)$",
        description="Multiple-test correction of the rollback tests: holm or bonferroni.",
    )
    min_requests: int = Field(200, ge=1, description="Requests per arm before a request check counts.")
    min_labels: int = Field(100, ge=1, description="Labels per arm before a quality check counts.")
    error_margin: float = Field(0.01, ge=0, description="Non-inferiority margin of the error rate, in absolute points.")
    latency_margin: float = Field(
        0.10, ge=0, description="Non-inferiority margin of the mean latency, as a fraction of stable's."
    )
    quality_margin: float = Field(
        0.02,
        ge=0,
        description="Non-inferiority margin of accuracy, in points (of an error metric: a fraction of stable's).",
    )
    estimated_margin: float = Field(0.03, ge=0, description="Non-inferiority margin of an estimated metric, in points.")
    fairness_margin: float = Field(
        0.05, ge=0, description="How far the canary's demographic parity difference may exceed stable's."
    )
    sequential: bool = True


class CanaryConfig(Section):
    model: str = Field(description="The model whose registry canary is rolled out.")
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        description="Percent of traffic to the canary at each step; 100 makes it the stable version.",
    )
    interval: Duration = Field("10m", description="How often a step is analysed (and the least time spent at a step).")
    sensitive: str | None = Field(
        None, description="Compare fairness of the two arms by this field (inputs.X or tags.X)."
    )
    policy: CanaryPolicyConfig = Field(CanaryPolicyConfig(), description="The analysis' thresholds.")

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if (
            not steps
            or steps[0] <= 0
            or steps[-1] != 100
            or any(b <= a for a, b in zip(steps, steps[1:], strict=False))
        ):
            raise ValueError(f"expected increasing percentages in (0, 100] ending at 100, got {steps}")
        return steps

    @property
    def interval_s(self) -> float:
        return parse_duration(self.interval)


def canary_problems(canaries: list[CanaryConfig], models: dict[str, Any]) -> list[Any]:
    """Duplicate models and (with `models:`) unknown ones, at their key paths."""
    from aisre.config.checks import Problem

    found: list[Problem] = []
    seen: set[str] = set()
    for i, c in enumerate(canaries):
        if c.model in seen:
            found.append(Problem(("canaries", i, "model"), f"another canary entry already drives {c.model!r}"))
        seen.add(c.model)
        if models and c.model not in models:
            found.append(Problem(("canaries", i, "model"), f"unknown model {c.model!r}; configured: {sorted(models)}"))
    return found
