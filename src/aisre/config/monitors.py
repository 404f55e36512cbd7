"""The `monitors:` section: monitoring jobs that check stored windows continuously (`aisre watch`, `aisre serve`).

A job names a model (optionally one version), a reference to compare with (a saved `Reference`
file, or a time range of that model's stored records profiled on the first run), a window (a
tumbling duration aligned to the epoch, or every N records), how often to run (default: the
window) and the checks to run, with the drift options passed to `aisre.drift`. The
`estimated_performance` check fits CBPE once on a stored, labelled reference range and publishes
each window's `estimated_<metric>` (what an `estimated_quality` SLI reads), breached below `min`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from aisre.config.base import Section
from aisre.config.slo import parse_duration

#: Checks a job can run today.
IMPLEMENTED_CHECKS = ("data_drift", "prediction_drift", "estimated_performance")
#: What a job runs when `checks` is not given (estimated_performance needs labels: opt in).
DEFAULT_CHECKS = ("data_drift", "prediction_drift")
#: Checks the issue asks for that are not wired into jobs yet (named in the error, so a user knows).
PLANNED_CHECKS = ("performance", "cbpe", "fairness", "importance", "llm_quality")
#: Metrics the estimated_performance check can estimate (CBPE's, aisre.monitor.performance.cbpe.CBPE_METRICS).
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


class ReferenceRange(Section):
    """Stored records of the job's model in `[since, until)` (epoch seconds or ISO 8601 times)."""

    since: float
    until: float

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                raise ValueError(
                    f"expected epoch seconds or an ISO 8601 time such as 2026-01-01T00:00:00+00:00, got {value!r}"
                ) from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ReferenceRange:
        if not self.until > self.since:
            raise ValueError(f"until must be after since (got since={self.since}, until={self.until})")
        return self


class CountWindow(Section):
    """Every `every` records (in time order) make one window."""

    every: int = Field(gt=0)


class MonitorJobConfig(Section):
    """One monitoring job. `window`: a duration (`1h`, `15m`; tumbling, aligned to the epoch) or
    `{every: N}` records. `schedule`: how often to run (default: the window; `1m` for count windows).
    `delay`: how long after a window's end its records are taken as complete (writes are batched).
    `min_rows`: a window with fewer records is not checked and records a `too_few_rows` error.
    `metric` / `min`: for `estimated_performance`, the CBPE metric (default accuracy) and the value
    below which a window's `estimated_<metric>` signal is breached (without `min`: CBPE's own band)."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$")
    model: str
    version: str | None = None
    reference: str | ReferenceRange
    window: str | CountWindow
    schedule: str | None = None
    delay: str = "1s"
    checks: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKS), min_length=1)
    method: str | dict[str, str] = "auto"
    threshold: float | dict[str, float] | None = None
    share_threshold: float = Field(0.5, gt=0, le=1)
    min_rows: int = Field(1, ge=1)
    metric: str | None = None
    min: float | None = None

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, str):
            parse_duration(value)
        return value

    @field_validator("schedule", "delay")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not (isinstance(value, str) and value.strip() in ("0", "0s")):
            parse_duration(value)
        return value

    @field_validator("checks")
    @classmethod
    def _checks(cls, names: list[str]) -> list[str]:
        implemented = ", ".join(IMPLEMENTED_CHECKS)
        for name in names:
            if name in PLANNED_CHECKS:
                raise ValueError(f"check {name!r} is not available in monitoring jobs yet; implemented: {implemented}")
            if name not in IMPLEMENTED_CHECKS:
                raise ValueError(f"unknown check {name!r}; implemented: {implemented}")
        if len(set(names)) != len(names):
            raise ValueError(f"a check is listed twice: {names}")
        return names

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        if value is not None and value not in ESTIMATED_METRICS:
            known = ", ".join(ESTIMATED_METRICS)
            raise ValueError(f"unknown metric {value!r}; estimated_performance estimates: {known}")
        return value

    @model_validator(mode="after")
    def _estimated(self) -> MonitorJobConfig:
        if "estimated_performance" not in self.checks:
            if self.metric is not None or self.min is not None:
                raise ValueError("metric and min apply to the estimated_performance check; add it to checks")
        elif isinstance(self.reference, str):
            raise ValueError(
                "the estimated_performance check needs a reference of stored records with labels: "
                "reference: {since: ..., until: ...} (a saved reference file holds no labels)"
            )
        return self

    @property
    def estimated_metric(self) -> str:
        """The metric the estimated_performance check estimates."""
        return self.metric or "accuracy"

    @property
    def window_s(self) -> float | None:
        """The tumbling window in seconds (None for count windows)."""
        return parse_duration(self.window) if isinstance(self.window, str) else None

    @property
    def schedule_s(self) -> float:
        """Seconds between runs."""
        if self.schedule is not None:
            return parse_duration(self.schedule)
        return self.window_s or 60.0

    @property
    def delay_s(self) -> float:
        return 0.0 if self.delay.strip() in ("0", "0s") else parse_duration(self.delay)
