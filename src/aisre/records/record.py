"""InferenceRecord and Label: the one data type every part of aisre shares.

A plain slotted dataclass, not a pydantic model: records are made on the request hot path
(microseconds matter); validation happens at the edges that accept them from outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from aisre.records.ids import new_record_id


class Route(StrEnum):
    """Which path through the routing table produced the inference."""

    PRIMARY = "primary"
    CANARY = "canary"
    SHADOW = "shadow"
    FALLBACK = "fallback"


class Status(StrEnum):
    """How an inference ended. `cancelled`: the caller left before the answer (a client that
    disconnected); neither a success nor a failure of the model, so not counted as an error."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


@dataclass(slots=True, kw_only=True)
class InferenceRecord:
    """One inference: what went in, what came out, how long it took, what it cost.

    Keyword-only: with 22 fields, a positional call silently shifts every value after a
    missed or added one (`scores` landing in `output_text`); names make that impossible.

    Units: `ts` seconds since the Unix epoch (when the inference finished); `latency_s`,
    `ttft_s` (time to first token) and `tpot_s` (time per output token) in seconds;
    `cost_usd` in US dollars. `key_id` is the caller's key *id*, never the secret.
    `tags` are free-form string labels (a segment, a sensitive attribute for fairness).
    """

    model: str
    version: str
    inputs: Any = None
    prediction: Any = None
    scores: Any = None
    output_text: str | None = None
    operation: str = "predict"
    route: Route = Route.PRIMARY
    status: Status = Status.OK
    error: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    key_id: str | None = None
    trace_id: str | None = None
    replica: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ts: float = 0.0
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = new_record_id(self.ts or None)

    def problems(self) -> list[str]:
        """Everything wrong with this record, as messages naming the field; empty if valid."""
        found: list[str] = []
        for name in ("model", "version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                found.append(f"{name}: expected a non-empty string, got {value!r}")
        for name in ("latency_s", "ttft_s", "tpot_s", "cost_usd"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                found.append(f"{name}: expected a finite number >= 0 or None, got {value!r}")
        for name in ("input_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                found.append(f"{name}: expected an integer >= 0 or None, got {value!r}")
        try:
            Route(self.route)
        except ValueError:
            found.append(f"route: expected one of {[r.value for r in Route]}, got {self.route!r}")
        try:
            Status(self.status)
        except ValueError:
            found.append(f"status: expected one of {[s.value for s in Status]}, got {self.status!r}")
        if not isinstance(self.tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            found.append(f"tags: expected a mapping of strings to strings, got {self.tags!r}")
        return found


@dataclass(slots=True)
class Label:
    """Ground truth for one inference, arriving later than the inference itself."""

    record_id: str
    value: Any
    ts: float = 0.0


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(InferenceRecord))
