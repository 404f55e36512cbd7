"""The `monitors:` section: monitoring jobs that check stored windows continuously (`aisre watch`, `aisre serve`).

A job names a model (optionally one version), a reference to compare with (a saved `Reference`
file, or a time range of that model's stored records profiled on the first run), a window (a
tumbling duration aligned to the epoch, or every N records), how often to run (default: the
window) and the checks to run, with the drift options passed to `aisre.drift`. The
`estimated_performance` check fits CBPE once on a stored, labelled reference range and publishes
each window's `estimated_<metric>` (what an `estimated_quality` SLI reads), breached below `min`.
The options of the other checks (`performance`, `fairness`, `importance`, `llm_quality`) are blocks
beside `checks:` (aisre.config.monitor_checks). `catch_up` bounds how many past windows a new job
checks at start; `labels_within` how far back late labels make a window be checked again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from aisre.config.base import Section
from aisre.config.monitor_checks import (
    ConstantBand,
    EstimatedOptions,
    FairnessOptions,
    ImportanceOptions,
    LLMQualityOptions,
    PerformanceOptions,
    StdBand,
    parse_std,
)
from aisre.config.slo import parse_duration

#: Checks a job can run.
IMPLEMENTED_CHECKS = (
    "data_drift",
    "prediction_drift",
    "estimated_performance",
    "performance",
    "fairness",
    "importance",
    "llm_quality",
    "shadow",
)
#: What a job runs when `checks` is not given (the others need labels or options: opt in).
DEFAULT_CHECKS = ("data_drift", "prediction_drift")
#: Other names for a check, named in the error so a user finds the right one.
ALIASES = {"cbpe": "estimated_performance", "realised_performance": "performance", "llm": "llm_quality"}
#: Metrics the estimated_performance check can estimate (CBPE's, aisre.monitor.performance.cbpe.CBPE_METRICS).
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: Checks configured by a block of the same name beside `checks:`.
OPTION_BLOCKS = ("performance", "fairness", "importance", "llm_quality", "estimated_performance")
#: A drift threshold that follows the reference (StdBand) or bounds a distance (ConstantBand) needs a distance.
DISTANCE_METHODS = ("hellinger", "jensenshannon", "linfinity", "psi", "wasserstein")


class ReferenceRange(Section):
    """Stored records of the job's model in `[since, until)` (epoch seconds or ISO 8601 times)."""

    since: float = Field(description="Start of the range (included): epoch seconds or an ISO 8601 time.")
    until: float = Field(description="End of the range (excluded): epoch seconds or an ISO 8601 time.")

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

    every: int = Field(gt=0, description="Records per window.")


class MonitorJobConfig(Section):
    """One monitoring job. `window`: a duration (`1h`, `15m`; tumbling, aligned to the epoch) or
    `{every: N}` records. `schedule`: how often to run (default: the window; `1m` for count windows).
    `delay`: how long after a window's end its records are taken as complete (writes are batched).
    `min_rows`: a window with fewer records is not checked and records a `too_few_rows` error.
    `threshold` (drift): a number (each method's own scale), `{column: number}`, `std` / `{std: k}`
    (mean + k·std of the statistic over reference chunks; needs a distance `method`) or `{lower,
    upper}` (a constant band for a distance). `chunk_size`: the reference chunk for `std` (default:
    a count window's size; for a time window the reference's mean rows per window duration when the
    reference is a stored range, else the window's own row count). Give such a threshold a reference
    of six windows or more (NannyML warns below six chunks): the std of two or three chunks is noise.
    `metric` / `min`: shorthand for `estimated_performance: {metric, min}` (CBPE metric, default
    accuracy; breached below `min`, else outside CBPE's own band). `catch_up`: at most this many past
    windows are checked when a job first starts (older ones are skipped, counted in one
    `monitor_windows_skipped` signal). `labels_within`: windows that ended this long ago or less are
    checked again by the label-dependent checks when their labels change (`0` turns it off)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$",
        description="A unique name (lower case, digits, - and _), the `monitor` label of its signals.",
    )
    model: str = Field(description="The model whose stored records are checked.")
    version: str | None = Field(
        None, description="Only this version's records; unset: each version checked on its own."
    )
    reference: str | ReferenceRange = Field(
        description=(
            "What the window is compared with: a saved reference file (`aisre monitor reference`) or a stored time "
            "range `{since, until}`."
        )
    )
    window: str | CountWindow
    schedule: str | None = None
    delay: str = "1s"
    checks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CHECKS),
        min_length=1,
        description=(
            "What to check on each window: data_drift, prediction_drift, performance, estimated_performance, "
            "fairness, importance, llm_quality, shadow."
        ),
    )
    method: str | dict[str, str] = Field(
        "auto",
        description=(
            "The drift method (`auto`: Evidently's choice per column; ks, psi, wasserstein, jensenshannon, ...), or "
            "one per column `{column: method}`."
        ),
    )
    threshold: float | StdBand | ConstantBand | dict[str, float] | None = None
    chunk_size: int | None = Field(None, ge=2)
    share_threshold: float = Field(
        0.5, gt=0, le=1, description="The dataset drifts when at least this share of its columns drift."
    )
    min_rows: int = Field(1, ge=1)
    metric: str | None = None
    min: float | None = Field(
        None, description="Shorthand for `estimated_performance: {min}`: breached when the estimate is below it."
    )
    catch_up: int = Field(24, ge=0)
    labels_within: str = "7d"
    performance: PerformanceOptions | None = Field(None, description="Options of the `performance` check.")
    fairness: FairnessOptions | None = Field(
        None,
        validate_default=True,
        description="Options of the `fairness` check (needed with it: its `sensitive` fields).",
    )
    importance: ImportanceOptions | None = Field(None, description="Options of the `importance` check.")
    llm_quality: LLMQualityOptions | None = Field(None, description="Options of the `llm_quality` check.")
    estimated_performance: EstimatedOptions | None = Field(
        None, description="Options of the `estimated_performance` check (CBPE)."
    )

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        # the two band forms are recognised by their keys; any other mapping is {column: number}
        band: type[Section] | None = None
        if isinstance(value, dict) and value and set(value) <= {"lower", "upper"}:
            band = ConstantBand
        elif isinstance(value, dict) and set(value) == {"std"} or value == "std":
            band, value = StdBand, parse_std(value)
        if band is None:
            return parse_std(value)
        try:
            return band.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where + ': ' if where else ''}{msg}") from None

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, str):
            parse_duration(value)
        return value

    @field_validator("schedule", "delay", "labels_within")
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
            if name in ALIASES:
                raise ValueError(f"unknown check {name!r}: did you mean {ALIASES[name]!r}? implemented: {implemented}")
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
    def _shadow_version(self) -> MonitorJobConfig:
        if "shadow" in self.checks and self.version is None:
            raise ValueError(
                "the shadow check compares one version's shadow answers with the primary's: name it (version)"
            )
        return self

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
        elif self.estimated_performance is not None and (self.metric is not None or self.min is not None):
            raise ValueError("give metric/min inside estimated_performance: {...} or beside it, not both")
        return self

    @field_validator("threshold")
    @classmethod
    def _distance(cls, value: Any, info: ValidationInfo) -> Any:
        method = info.data.get("method", "auto")
        if isinstance(value, StdBand | ConstantBand) and (
            not isinstance(method, str) or method not in DISTANCE_METHODS
        ):
            form = "std" if isinstance(value, StdBand) else "{lower, upper}"
            raise ValueError(
                f"a {form} threshold bounds a distance; set method to one of {', '.join(DISTANCE_METHODS)} "
                f"(auto may pick a p-value test), got method {method!r}"
            )
        return value

    @field_validator(*OPTION_BLOCKS)
    @classmethod
    def _listed(cls, value: Any, info: ValidationInfo) -> Any:
        checks = info.data.get("checks", [])
        if value is not None and info.field_name not in checks:
            raise ValueError(f"options for the {info.field_name} check, which is not in checks {checks}")
        if value is None and info.field_name == "fairness" and "fairness" in checks:
            raise ValueError("the fairness check needs its options, at least fairness: {sensitive: [field, ...]}")
        perf_band = info.field_name == "performance" and value is not None and value.threshold is not None
        if perf_band and isinstance(info.data.get("reference"), str):
            raise ValueError(
                "threshold: a band from the reference needs labelled stored records: "
                "reference: {since: ..., until: ...} (a saved reference file holds no labels)"
            )
        return value

    @model_validator(mode="after")
    def _chunks(self) -> MonitorJobConfig:
        perf = self.performance
        if self.chunk_size is not None and not isinstance(self.threshold, StdBand):
            if not (perf and perf.threshold) and not self._estimated_band:
                raise ValueError("chunk_size: only used by a threshold from the reference (std or {std: k})")
        return self

    def reference_field_problems(self, columns: Any) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path, problem) for input fields the checks name but the reference lacks (`columns`: the
        reference's column names); `aisre check-config` reports them for a saved reference file."""
        have = sorted(str(c) for c in columns)
        found: list[tuple[tuple[str | int, ...], str]] = []
        named = [("fairness", "sensitive", self.fairness.sensitive if self.fairness else [])]
        named.append(("importance", "features", (self.importance.features or []) if self.importance else []))
        for block, key, fields in named:
            for i, name in enumerate(fields):
                if name not in have:
                    found.append(((block, key, i), f"field {name!r} is not in the reference (its columns: {have})"))
        return found

    @property
    def _estimated_band(self) -> bool:
        return self.estimated_performance is not None and self.estimated_performance.threshold is not None

    @property
    def estimated(self) -> EstimatedOptions:
        """The estimated_performance options (the block, or the `metric`/`min` shorthand)."""
        if self.estimated_performance is not None:
            return self.estimated_performance
        return EstimatedOptions(metric=self.metric or "accuracy", min=self.min)

    @property
    def estimated_metric(self) -> str:
        """The metric the estimated_performance check estimates."""
        return self.estimated.metric

    @property
    def performance_options(self) -> PerformanceOptions:
        return self.performance or PerformanceOptions()

    @property
    def importance_options(self) -> ImportanceOptions:
        return self.importance or ImportanceOptions()

    @property
    def llm_quality_options(self) -> LLMQualityOptions:
        return self.llm_quality or LLMQualityOptions()

    @property
    def label_checks(self) -> list[str]:
        """The checks a late label can change (run again when a window's labels change)."""
        out = [c for c in self.checks if c == "performance"]
        if "fairness" in self.checks and self.fairness is not None and self.fairness.labels_needed:
            out.append("fairness")
        return out

    @property
    def labels_within_s(self) -> float:
        return 0.0 if self.labels_within.strip() in ("0", "0s") else parse_duration(self.labels_within)

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
