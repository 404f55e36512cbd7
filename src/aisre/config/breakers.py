"""The `breakers:` section: AI circuit breakers per model version, opened by errors, latency *and quality*.

A breaker watches one model (optionally one version; else each version has its own) and opens
when any `open_when` condition holds: the version's error rate or latency over recent requests
(judged in the request path), or a quality condition judged from the store (a monitoring signal
such as `dataset_drift` or `estimated_accuracy`, an SLO's burn rate or alert). Open, its traffic
goes to `fallback`: another version of the model, or a rule function named by dotted path
(``package.module:function``) that answers in the model's protocol. After `open_for` it lets
`probe_share` of the requests through (half-open); it closes when `probes` of them succeed
within the error and latency bounds and no quality condition holds any more, and reopens
(waiting twice as long, up to `max_open_for`) otherwise.

Example::

    breakers:
      - model: fraud
        version: v2
        fallback: {rule: "fraud_rules:flag_large_amounts"}
        open_when:
          - {error_rate: 0.2}                         # over the last `window` requests
          - {latency_p99_s: 0.5}
          - {signal: dataset_drift, breached: true}   # the newest window's signal
          - {signal: estimated_accuracy, min: 0.9}
          - {slo: fraud-correctness, burn_rate: 14.4, window: 1h}
          - {slo: fraud-fairness, alert: page}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from aisre.config.base import Section
from aisre.config.slo import Duration, parse_duration

_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class BreakerCondition(Section):
    """One reason to open. Exactly one of `error_rate`, `latency_p99_s`, `signal`, `slo`.

    - `error_rate`: open when the share of failed requests among the last `window_requests` of the
      version (at least `min_requests`) is above it.
    - `latency_p99_s`: open when the nearest-rank 99th percentile of their latency is above it.
    - `signal` (a monitoring signal of the version, newest window): open when `breached` is given and
      the signal's breached flag equals it, or when its value is below `min` / above `max`.
    - `slo` (an SLO's name): open when its burn rate over `window` is above `burn_rate`, or when its
      `alert` (page or ticket) is firing.
    `for`: how long the condition must hold before it opens the breaker (quality conditions).
    """

    error_rate: float | None = Field(None, gt=0, le=1)
    latency_p99_s: float | None = Field(None, gt=0)
    window_requests: int = Field(
        100, ge=1, description="error_rate / latency_p99_s: how many of the version's last requests are judged."
    )
    min_requests: int = Field(
        20, ge=1, description="error_rate / latency_p99_s: fewer requests than this never open the breaker."
    )
    signal: str | None = None
    breached: bool | None = Field(None, description="signal: open when the signal's breached flag equals this.")
    min: float | None = Field(None, description="signal: open when its value is below this.")
    max: float | None = Field(None, description="signal: open when its value is above this.")
    slo: str | None = None
    burn_rate: float | None = Field(
        None, gt=0, description="slo: open when the SLO's burn rate over `window` is above this."
    )
    window: Duration = Field(
        "1h", description="slo: the window of `burn_rate`; one the SLO computes (its alert windows, 5m, 1h...)."
    )
    alert: Literal["page", "ticket"] | None = Field(
        None, description="slo: open while this alert (page or ticket) of the SLO fires."
    )
    for_: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _one_kind(self) -> BreakerCondition:
        kinds = [k for k in ("error_rate", "latency_p99_s", "signal", "slo") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "expected exactly one of error_rate, latency_p99_s, signal or slo"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.signal is not None and self.breached is None and self.min is None and self.max is None:
            raise ValueError(f"signal {self.signal!r}: say when it opens: breached: true, min or max")
        if self.slo is not None and (self.burn_rate is None) == (self.alert is None):
            raise ValueError(f"slo {self.slo!r}: expected one of burn_rate (with window) or alert (page or ticket)")
        if self.min_requests > self.window_requests:
            raise ValueError(f"min_requests ({self.min_requests}) is above window_requests ({self.window_requests})")
        return self

    @property
    def kind(self) -> Literal["errors", "latency", "signal", "slo"]:
        if self.error_rate is not None:
            return "errors"
        if self.latency_p99_s is not None:
            return "latency"
        return "signal" if self.signal is not None else "slo"

    @property
    def for_s(self) -> float:
        return 0.0 if self.for_ is None else parse_duration(self.for_)

    @property
    def window_s(self) -> float:
        return parse_duration(self.window)


class Fallback(Section):
    """Where an open breaker sends traffic: `version` (another version of the model) or `rule`
    (``package.module:function``, imported and checked at start-up)."""

    version: str | None = Field(None, description="Another version of the same model.")
    rule: str | None = Field(
        None, description="A rule function `package.module:function` that answers in the model's protocol."
    )

    @model_validator(mode="after")
    def _one(self) -> Fallback:
        if (self.version is None) == (self.rule is None):
            raise ValueError("expected exactly one of version or rule")
        if self.rule is not None and not _DOTTED.match(self.rule):
            raise ValueError(f"rule: expected package.module:function, got {self.rule!r}")
        return self


class BreakerConfig(Section):
    """One breaker (see the module docstring)."""

    model: str = Field(description="The model whose versions the breaker watches.")
    version: str | None = Field(
        None, description="The version watched; unset: each version of the model has its own breaker."
    )
    fallback: Fallback = Field(description="Where traffic goes while the breaker is open.")
    open_when: list[BreakerCondition] = Field(
        min_length=1, description="Conditions; the breaker opens when any of them holds."
    )
    open_for: Duration = Field(
        "30s", description="How long the breaker stays open before it lets probes through (half-open)."
    )
    max_open_for: Duration = Field(
        "10m", description="The longest open time (it doubles each time a half-open breaker reopens)."
    )
    probe_share: float = Field(0.1, gt=0, le=1, description="Share of requests sent to the version while half-open.")
    probes: int = Field(20, ge=1, description="Healthy probes needed to close the breaker.")

    @model_validator(mode="after")
    def _durations(self) -> BreakerConfig:
        if parse_duration(self.max_open_for) < parse_duration(self.open_for):
            raise ValueError(f"max_open_for ({self.max_open_for}) is shorter than open_for ({self.open_for})")
        if self.fallback.version is not None and self.fallback.version == self.version:
            raise ValueError(f"fallback.version: {self.version!r} cannot fall back to itself")
        return self

    @property
    def open_for_s(self) -> float:
        return parse_duration(self.open_for)

    @property
    def max_open_for_s(self) -> float:
        return parse_duration(self.max_open_for)


def breaker_problems(breakers: list[BreakerConfig], models: dict[str, Any], slos: list[Any]) -> list[Any]:
    """Structural problems, each at its key path: with `models:`, unknown models and versions
    (breaker and fallback); two breakers on one version; fallback versions that form a cycle
    (v2 falls back to v1 and v1 to v2: with both open, traffic has nowhere to go); SLO conditions
    naming an unknown SLO, or a burn-rate window that SLO does not compute."""
    from aisre.config.checks import Problem

    found: list[Problem] = []
    by_slo = {s.name: s for s in slos}
    seen: set[tuple[str, str | None]] = set()
    edges: dict[tuple[str, str], tuple[str, int]] = {}
    for i, b in enumerate(breakers):
        loc: tuple[str | int, ...] = ("breakers", i)
        if (b.model, b.version) in seen:
            found.append(
                Problem(
                    (*loc, "version"), f"another breaker already watches {b.model} {b.version or '(every version)'}"
                )
            )
        seen.add((b.model, b.version))
        if models:
            model = models.get(b.model)
            if model is None:
                found.append(Problem((*loc, "model"), f"unknown model {b.model!r}; configured: {sorted(models)}"))
                continue
            versions = sorted(model.versions)
            if b.version is not None and b.version not in versions:
                found.append(
                    Problem((*loc, "version"), f"model {b.model!r} has no version {b.version!r}; it has {versions}")
                )
            if b.fallback.version is not None and b.fallback.version not in versions:
                found.append(
                    Problem(
                        (*loc, "fallback", "version"),
                        f"model {b.model!r} has no version {b.fallback.version!r}; it has {versions}",
                    )
                )
        if b.fallback.version is not None and b.version is not None:
            edges[(b.model, b.version)] = (b.fallback.version, i)
        for j, c in enumerate(b.open_when):
            if c.slo is None:
                continue
            slo = by_slo.get(c.slo)
            if slo is None:
                found.append(
                    Problem((*loc, "open_when", j, "slo"), f"unknown SLO {c.slo!r}; configured: {sorted(by_slo)}")
                )
            elif c.burn_rate is not None and c.window not in _window_names(slo):
                found.append(
                    Problem(
                        (*loc, "open_when", j, "window"),
                        f"SLO {c.slo!r} has no {c.window} burn rate; it has {_window_names(slo)}",
                    )
                )
    for (model, start), (_, i) in edges.items():
        path, at = [start], start
        while (model, at) in edges:
            at = edges[(model, at)][0]
            if at == start:
                found.append(
                    Problem(
                        ("breakers", i, "fallback", "version"),
                        f"fallback cycle: {' -> '.join([*path, at])} (model {model})",
                    )
                )
                break
            if at in path:
                break
            path.append(at)
    return found


def _window_names(slo: Any) -> list[str]:
    # Imported here: a config without breakers on SLOs must not load the evaluator (and numpy) at all.
    from aisre.slo.evaluate import window_names

    return window_names(slo)
