"""The `slos:` section: service level objectives whose SLIs may be request health *or* model correctness.

One spec, two evaluators (embedded, from the store; and Prometheus rules in Sloth's shape).
An SLO says which model (and optionally version), what counts as good (the SLI), how much
must be good (the objective) over which rolling period, and how the budget is counted:

- `events`: every request (or labelled prediction) is good or bad; budget = (1 - objective)
  x events. For availability, latency/TTFT/TPOT under a threshold, correctness from labels.
- `timeslices`: every `timeslice` window is good or bad (Google's / OpenSLO's timeslices);
  budget = (1 - objective) x slices. For what only a window can say: a percentile bound,
  accuracy or recall over the window, estimated accuracy, a fairness gap, drift, freshness,
  LLM quality rates.

The examples in `examples/slos.yaml` are the issue's: "99.9% of fraud predictions are
delivered within 200ms", "model recall for true positives > 90%", "99th percentile latency
< 500ms", "prediction accuracy > 95% for critical use cases", "data freshness < 24 hours".
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from aisre.config.base import Section

SLIKind = Literal[
    "availability",
    "latency",
    "ttft",
    "tpot",
    "correctness",
    "quality",
    "estimated_quality",
    "fairness",
    "drift",
    "freshness",
    "llm_quality",
]
#: SLI kinds whose every event is good or bad (they may also be budgeted by timeslices).
EVENT_KINDS = frozenset({"availability", "latency", "ttft", "tpot", "correctness"})
#: Per-window metrics the `quality` kind knows (realised from late labels).
QUALITY_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "mae", "mse", "rmse", "mape", "r2"})
#: Quality metrics of a classifier, where `pos_label` names the positive class.
CLASSIFICATION_QUALITY = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
#: Gaps the `fairness` kind knows: `aisre.monitor.fairness`'s summary (Fairlearn's definitions; a test
#: keeps the two lists equal). Ratios are floors (`min`), differences ceilings (`max`).
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "disparate_impact_ratio",
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$")


def parse_duration(text: str) -> float:
    """'30d', '5m', '1.5h' -> seconds; ValueError naming the accepted units otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or float(match[1]) <= 0:
        raise ValueError(f"expected a duration such as 5m, 1h, 28d or 4w (units s, m, h, d, w), got {text!r}")
    return float(match[1]) * _SECONDS[match[2]]


def _checked_duration(text: str) -> str:
    parse_duration(text)
    return text


#: A duration kept as written ("30d"), checked when the config loads.
Duration = Annotated[str, AfterValidator(_checked_duration)]


class SLIConfig(Section):
    """What counts as good. Which fields apply depends on `kind`:

    - availability: a request that did not fail (status ok; cancelled calls are not counted)
    - latency / ttft / tpot: `threshold_s`; with `percentile` (e.g. 0.99) a timeslice is good
      when that percentile of the slice is <= `threshold_s`, else each event under it is good
    - correctness: a labelled prediction equal to its label (events, as labels arrive)
    - quality: `metric` (accuracy, recall, precision, f1, roc_auc, mae, mse, rmse, mape, r2) over a
      timeslice, with `min` and/or `max`; `pos_label` names the positive class of precision, recall
      and f1 (default 1, i.e. 1/True; a string such as "fraud" makes the task binary)
    - estimated_quality: CBPE's estimate of `metric` over a timeslice, with `min`
    - fairness: `metric` (one of FAIRNESS_METRICS) across groups of the input field `sensitive`,
      good inside `min` and/or `max` (e.g. demographic_parity_difference with max 0.1); `pos_label`
      as for quality
    - drift: a timeslice is bad when the `signal` (default `dataset_drift`) says drift
    - freshness: the newest `model_trained_at` / `reference_refreshed_at` mark (`source`: trained,
      reference or any) is at most `max_age` old at each slice's end
    - llm_quality: the rate `signal` (e.g. llm_refusal_rate) is at most `max`

    `where` keeps only records whose input or tag fields equal the given values
    (e.g. `{tags.use_case: critical}`).
    """

    kind: SLIKind = Field(
        description="The kind of indicator; it decides which other keys apply (see the section's text)."
    )
    threshold_s: float | None = Field(
        None,
        gt=0,
        description=(
            "latency / ttft / tpot: a request (or the slice's `percentile`) at or under this many seconds is good."
        ),
    )
    percentile: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="With latency kinds: judge each timeslice by this percentile (e.g. 0.99) instead of each event.",
    )
    metric: str | None = Field(
        None,
        description=(
            "quality / estimated_quality: the metric judged (accuracy, recall, mae...); fairness: the gap (one of "
            "FAIRNESS_METRICS)."
        ),
    )
    pos_label: str | int | bool | None = None
    min: float | None = Field(
        None, description="Floor of the slice's value (quality, estimated_quality, fairness ratios)."
    )
    max: float | None = Field(
        None, description="Ceiling of the slice's value (error metrics, fairness differences, llm_quality rates)."
    )
    sensitive: str | None = Field(None, description="fairness: the input field whose groups are compared.")
    signal: str | None = Field(
        None,
        description=(
            "drift: the drift signal (default dataset_drift); llm_quality: the rate signal (e.g. llm_refusal_rate)."
        ),
    )
    max_age: Duration | None = Field(
        None, description="freshness: the oldest the newest mark may be at each slice's end."
    )
    source: Literal["trained", "reference", "any"] = Field(
        "any",
        description=(
            "freshness: which marks count: `trained` (model_trained_at), `reference` (reference_refreshed_at) or `any`."
        ),
    )
    where: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        known = {"quality": sorted(QUALITY_METRICS), "fairness": list(FAIRNESS_METRICS)}.get(str(kind))
        if metric is not None and known is not None and metric not in known:
            raise ValueError(f"expected one of {known} for a {kind} SLI")
        return metric

    @field_validator("pos_label")
    @classmethod
    def _pos_label_applies(cls, pos_label: str | int | bool | None, info: ValidationInfo) -> str | int | bool | None:
        kind, metric = info.data.get("kind"), info.data.get("metric")
        applies = kind == "fairness" or (kind == "quality" and metric in CLASSIFICATION_QUALITY)
        if pos_label is not None and not applies:
            raise ValueError(
                "pos_label applies to fairness SLIs and quality SLIs of a classifier "
                f"({', '.join(sorted(CLASSIFICATION_QUALITY))}), not to a {kind} SLI"
                + (f" of {metric}" if metric else "")
            )
        return pos_label

    @field_validator("source")
    @classmethod
    def _source_applies(cls, source: str, info: ValidationInfo) -> str:
        if source != "any" and info.data.get("kind") != "freshness":
            raise ValueError(f"source applies to freshness SLIs only, not to a {info.data.get('kind')} SLI")
        return source

    @model_validator(mode="after")
    def _fields_for_kind(self) -> SLIConfig:
        need = {
            "latency": ["threshold_s"],
            "ttft": ["threshold_s"],
            "tpot": ["threshold_s"],
            "quality": ["metric"],
            "estimated_quality": ["metric", "min"],
            "fairness": ["metric", "sensitive"],
            "freshness": ["max_age"],
            "llm_quality": ["signal", "max"],
        }.get(self.kind, [])
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"an SLI of kind {self.kind!r} needs {', '.join(missing)}")
        if self.kind in ("quality", "fairness") and self.min is None and self.max is None:
            raise ValueError(f"an SLI of kind {self.kind!r} needs min and/or max (a window is good inside them)")
        if self.where and self.kind == "freshness":
            raise ValueError("where does not apply to a freshness SLI (marks are per model and version)")
        if self.percentile is not None and self.kind not in ("latency", "ttft", "tpot"):
            raise ValueError("percentile applies to latency, ttft and tpot SLIs only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    @property
    def per_event(self) -> bool:
        """Whether each event is good or bad by itself (else only a window can be judged)."""
        return self.kind in EVENT_KINDS and self.percentile is None

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age is None else parse_duration(self.max_age)


class AlertWindow(Section):
    """One multi-window burn-rate alert: fire when the burn rate over both `long` and `short`
    is at least `burn_rate` (SRE workbook, chapter 5, alert 6). `budget_percent` is how much of
    the period's budget such a burn spends over `long`; when `burn_rate` is omitted it is
    derived from it for the SLO's period (as Sloth does): budget_percent/100 x period / long."""

    long: Duration = Field(
        description="The long window: the burn rate over it must be high (the alert is significant)."
    )
    short: Duration = Field(
        description="The short window: the burn rate over it must be high too (the alert resets quickly)."
    )
    budget_percent: float = Field(gt=0, le=100)
    burn_rate: float | None = Field(
        None,
        gt=0,
        description="The burn rate both windows must reach; unset: derived from `budget_percent` for the SLO's period.",
    )

    @model_validator(mode="after")
    def _short_within_long(self) -> AlertWindow:
        if parse_duration(self.short) >= parse_duration(self.long):
            raise ValueError(f"short ({self.short}) must be shorter than long ({self.long})")
        return self


def _page_windows() -> list[AlertWindow]:  # SRE workbook for 30 days: 14.4x over 1h/5m, 6x over 6h/30m
    return [
        AlertWindow(long="1h", short="5m", budget_percent=2),
        AlertWindow(long="6h", short="30m", budget_percent=5),
    ]


def _ticket_windows() -> list[AlertWindow]:  # 3x over 1d/2h, 1x over 3d/6h
    return [
        AlertWindow(long="1d", short="2h", budget_percent=10),
        AlertWindow(long="3d", short="6h", budget_percent=10),
    ]


class AlertingConfig(Section):
    """Page and ticket alerts; `labels` and `annotations` are added to each (Prometheus style).
    `notify` names receivers of the top-level `notifications:` section that get each alert when it
    fires and when it resolves (Alertmanager's webhook payload; see `aisre.slo.notify`)."""

    enabled: bool = Field(
        True, description="Evaluate and export the alerts (off: the SLO is still judged, nobody is alerted)."
    )
    page: list[AlertWindow] = Field(
        default_factory=_page_windows,
        description=(
            "Page alerts: the SRE workbook's 2% of the budget in 1h (5m) and 5% in 6h (30m), burn rates 14.4 and 6 "
            "over 30 days."
        ),
    )
    ticket: list[AlertWindow] = Field(
        default_factory=_ticket_windows,
        description="Ticket alerts: 10% of the budget in 1d (2h) and in 3d (6h), burn rates 3 and 1 over 30 days.",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to each alert (Prometheus style)."
    )
    notify: list[str] = Field(default_factory=list)


class BudgetPolicy(Section):
    """What the control loop must do about this budget (read by `respond`)."""

    freeze_promotions_when_exhausted: bool = Field(
        False, description="Refuse promotions of the model (to canary or stable) while this SLO's budget is spent."
    )


class SLOConfig(Section):
    """One service level objective (see the module docstring)."""

    name: str = Field(
        description="A unique name (lower case, digits, - and _): the SLO's Prometheus label and CLI argument."
    )
    model: str = Field(description="The model whose records are judged.")
    version: str | None = Field(None, description="Only this version's records; unset: every version of the model.")
    description: str | None = Field(None, description="Free text, carried into the OpenSLO export.")
    objective: float = Field(
        gt=0, lt=1, description="The share of good events (or timeslices) that must be met over `period`, e.g. 0.999."
    )
    period: Duration = Field(
        "30d", description="The rolling window the objective and the error budget are counted over."
    )
    budgeting: Literal["events", "timeslices"] | None = Field(
        None,
        description=(
            "`events` (each request or labelled prediction is good or bad) or `timeslices` (each `timeslice` is); "
            "unset: events for availability, latency, ttft, tpot and correctness, timeslices for the rest."
        ),
    )
    timeslice: Duration = Field("5m", description="The length of one slice when budgeting by timeslices.")
    sli: SLIConfig = Field(description="What counts as good.")
    alerting: AlertingConfig = Field(
        AlertingConfig(), description="Multi-window multi-burn-rate page and ticket alerts, and who is notified."
    )
    policy: BudgetPolicy = Field(BudgetPolicy(), description="What the control loop does about this budget.")

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                "expected a lowercase slug (a-z, 0-9, - and _, at most 64 characters), such as fraud-latency"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> SLOConfig:
        if self.budgeting == "events" and not self.sli.per_event:
            raise ValueError(
                f"budgeting 'events' needs an SLI whose every event is good or bad; a {self.sli.kind!r} SLI"
                + (" with a percentile" if self.sli.percentile is not None else "")
                + " is judged per window: use budgeting: timeslices"
            )
        period = self.period_s
        if self.timeslice_s > period:
            raise ValueError(f"timeslice ({self.timeslice}) is longer than the period ({self.period})")
        for kind in ("page", "ticket"):
            for i, w in enumerate(getattr(self.alerting, kind)):
                if parse_duration(w.long) > period:
                    raise ValueError(f"alerting.{kind}[{i}].long ({w.long}) is longer than the period ({self.period})")
        return self

    @property
    def budgeting_mode(self) -> Literal["events", "timeslices"]:
        """`budgeting`, or the natural one for the SLI: events when each event can be judged."""
        if self.budgeting is not None:
            return self.budgeting
        return "events" if self.sli.per_event else "timeslices"

    @property
    def period_s(self) -> float:
        return parse_duration(self.period)

    @property
    def timeslice_s(self) -> float:
        return parse_duration(self.timeslice)

    @property
    def error_budget(self) -> float:
        """The share of events (or slices) that may be bad over the period: 1 - objective."""
        return 1.0 - self.objective
