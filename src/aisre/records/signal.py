"""Signal: every monitoring result as one uniform, storable, exportable fact.

A signal is `(model, version, name, labels, window, value, threshold, breached)`. SLOs and
playbooks read signals, never raw data. Signals are stored (the `signals` table) and
exported as Prometheus gauges (`aisre.telemetry.signals.SignalExporter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypedDict

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Signal:
    """One monitoring fact about a model version over a time window (epoch seconds).

    `name` is a Prometheus-safe snake_case name (`data_drift_score`, `accuracy`,
    `demographic_parity_difference`); `labels` say which column/method/group it is about.
    `breached` is the verdict against `threshold` (direction is the producer's business).
    """

    model: str
    version: str
    name: str
    value: float
    threshold: float | None = None
    breached: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    window_start: float | None = None
    window_end: float | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"signal name {self.name!r}: expected snake_case [a-z0-9_]")


class SignalScope(TypedDict):
    """What every signal of one check shares (whose, over which window), typed so that
    `Signal(name=..., value=..., **scope)` is checked field by field."""

    model: str
    version: str
    window_start: float | None
    window_end: float | None
