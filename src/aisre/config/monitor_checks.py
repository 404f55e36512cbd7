"""Options of the monitoring jobs' checks (`monitors[i].performance`, `.fairness`, `.importance`, ...).

Each block sits beside `checks:` in a job and is read only when its check is listed. Metric
names are checked against the statistics layer's own lists (`aisre.monitor.performance.metrics`,
`aisre.monitor.fairness`, `aisre.monitor.llm`), so a metric added there is accepted here.
Thresholds that follow the reference's variability (NannyML's) are written `std` (k = 3) or
`{std: k}`; `DriftThreshold` adds the constant forms the drift check takes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aisre.config.base import Section


class StdBand(Section):
    """mean ± k·std of the statistic over reference chunks the size of a window (NannyML's threshold)."""

    std: float = Field(3.0, ge=0, description="k: the band is the reference chunks' mean ± k standard deviations.")


class ConstantBand(Section):
    """A fixed band for a distance: alert when the statistic is outside [lower, upper]."""

    lower: float | None = Field(None, description="Alert below this value; unset: no lower bound.")
    upper: float | None = Field(None, description="Alert above this value; unset: no upper bound.")

    @model_validator(mode="after")
    def _some(self) -> ConstantBand:
        if self.lower is None and self.upper is None:
            raise ValueError("give lower, upper or both (neither would never alert)")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"lower {self.lower} must be below upper {self.upper}")
        return self


def parse_std(value: Any) -> Any:
    """`std` -> StdBand(); other values are left to the field's types."""
    if value == "std":
        return StdBand()
    if isinstance(value, str):
        raise ValueError(f"expected std, {{std: k}} or a number, got {value!r}")
    return value


def _metrics() -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    from aisre.monitor.performance import metrics as pm

    return tuple(pm.CLASSIFICATION_METRICS), tuple(pm.REGRESSION_METRICS), frozenset(pm.HIGHER_IS_BETTER)


class PerformanceOptions(Section):
    """Realised performance from late labels. `metrics`: names from aisre.monitor.performance;
    `min` (floors, for higher-is-better metrics such as recall) and `max` (ceilings, for errors such
    as mae) are constants; `threshold: std | {std: k}` derives a floor/ceiling for the metrics
    without one from the labelled reference's chunks. `task`: inferred from the metrics (regression
    metrics -> regression, else binary). `min_labels`: a window with fewer labelled rows publishes
    nothing yet (it is checked again as labels arrive)."""

    metrics: list[str] = Field(default_factory=lambda: ["accuracy"], min_length=1)
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(
        default_factory=dict, description="Ceilings by metric, for errors such as mae (`{mae: 3.5}`)."
    )
    threshold: StdBand | None = None
    task: Literal["binary", "multiclass", "regression"] | None = None
    pos_label: str | int | None = Field(None, description="The positive class of precision, recall and f1 (default 1).")
    min_labels: int = Field(20, ge=1)

    @field_validator("threshold", mode="before")
    @classmethod
    def _std(cls, value: Any) -> Any:
        return parse_std(value)

    @field_validator("metrics")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        classification, regression, _ = _metrics()
        unknown = [n for n in names if n not in (*classification, *regression)]
        if unknown:
            raise ValueError(
                f"unknown metric(s) {unknown}; expected some of {', '.join((*classification, *regression))}"
            )
        if any(n in regression for n in names) and any(n in classification for n in names):
            raise ValueError(f"mix of classification and regression metrics {names}: one task per check")
        return names

    @model_validator(mode="after")
    def _bounds(self) -> PerformanceOptions:
        _, regression, higher = _metrics()
        for key, limits in (("min", self.min), ("max", self.max)):
            for name in limits:
                if name not in self.metrics:
                    raise ValueError(f"{key}.{name}: not in metrics {self.metrics}")
                if (key == "min") != (name in higher):
                    other = "max" if key == "min" else "min"
                    better = "higher" if name in higher else "lower"
                    raise ValueError(f"{key}.{name}: {better} is better for {name}; give its bound under {other}")
        if self.task == "regression" and not all(n in regression for n in self.metrics):
            raise ValueError(f"task regression: metrics {self.metrics} are not regression metrics")
        if self.task in ("binary", "multiclass") and any(n in regression for n in self.metrics):
            raise ValueError(f"task {self.task}: metrics {self.metrics} include regression metrics")
        return self

    @property
    def resolved_task(self) -> str:
        _, regression, _ = _metrics()
        return self.task or ("regression" if all(n in regression for n in self.metrics) else "binary")


#: Fairness metrics whose value is a ratio (a floor: breached below `min_ratio`), the others are gaps.
FAIRNESS_RATIOS = ("demographic_parity_ratio", "disparate_impact_ratio")
#: Fairness metrics that need labels (true positive / false positive rates).
FAIRNESS_WITH_LABELS = ("equal_opportunity_difference", "equalized_odds_difference")


class FairnessOptions(Section):
    """Group fairness by `sensitive` input fields (a record's `inputs`, else its `tags`). `metrics`:
    from aisre.monitor.fairness (default demographic parity difference); gaps breach above
    `max_gap`, ratios below `min_ratio` (the four-fifths rule by default)."""

    sensitive: list[str] = Field(min_length=1, description="The input (else tag) fields whose groups are compared.")
    metrics: list[str] = Field(default_factory=lambda: ["demographic_parity_difference"], min_length=1)
    max_gap: float = Field(0.1, ge=0, le=1, description="Difference metrics breach above this gap.")
    min_ratio: float = Field(
        0.8, ge=0, le=1, description="Ratio metrics breach below this ratio (0.8: the four-fifths rule)."
    )
    pos_label: str | int = Field(1, description="The favourable prediction (and label) value.")
    method: Literal["between_groups", "to_overall"] = Field(
        "between_groups",
        description=(
            "Compare the groups with each other (`between_groups`) or each with the whole window (`to_overall`)."
        ),
    )
    min_rows: int = Field(1, ge=1, description="Groups with fewer rows in a window are left out.")

    @field_validator("sensitive", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("metrics")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        from aisre.monitor.fairness.groups import SUMMARY

        unknown = [n for n in names if n not in SUMMARY]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; expected some of {', '.join(SUMMARY)}")
        return names

    @property
    def thresholds(self) -> dict[str, float]:
        return {m: (self.min_ratio if m in FAIRNESS_RATIOS else self.max_gap) for m in self.metrics}

    @property
    def labels_needed(self) -> bool:
        return any(m in FAIRNESS_WITH_LABELS for m in self.metrics)


class ImportanceOptions(Section):
    """Feature-importance shift, label-free: a proxy model (a random forest) learns the served model's
    predictions from its inputs, once on the reference and once per window; permutation importances
    of the proxies are compared (Spearman, Kendall, share jumps) and, with data_drift, the drifted
    features' share of the reference importance (`drift_impact`). `features`: numeric inputs to use
    (default: every numeric reference input); `max_rows`: rows sampled from a window or the reference."""

    features: list[str] | None = None
    min_spearman: float = Field(
        0.8, ge=-1, le=1, description="Breached when the Spearman rank correlation of the importances falls below this."
    )
    min_kendall: float = Field(
        0.6, ge=-1, le=1, description="Breached when Kendall's tau of the importances falls below this."
    )
    max_share_change: float = Field(
        0.1, ge=0, le=1, description="Breached when a feature's share of the total importance moves by more than this."
    )
    drift_impact: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Breached when the drifted features hold more than this share of the reference importance.",
    )
    max_rows: int = Field(4000, ge=50)
    n_repeats: int = Field(5, ge=1, description="Permutations per feature for the permutation importance.")


class LLMQualityOptions(Section):
    """LLM output quality per window (aisre.monitor.llm.llm_quality). `max`: the highest acceptable
    rate per signal (`refusal_rate` or `llm_refusal_rate`; null: no limit), over the library's
    defaults; `expect_json` (or a JSON `schema`) turns on the invalid-JSON rate; `max_tokens`: the
    request limit when records do not carry it (for the truncation rate)."""

    max: dict[str, float | None] = Field(default_factory=dict)
    expect_json: bool = False
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="A JSON Schema the answers must follow (turns on the invalid-JSON rate)."
    )
    max_tokens: int | None = Field(None, ge=1)

    @field_validator("max")
    @classmethod
    def _known(cls, limits: dict[str, float | None]) -> dict[str, float | None]:
        from aisre.monitor.llm.quality import DEFAULT_MAX_RATES

        out = {}
        for key, value in limits.items():
            name = key if key.startswith("llm_") else f"llm_{key}"
            if name not in DEFAULT_MAX_RATES:
                known = ", ".join(k.removeprefix("llm_") for k in DEFAULT_MAX_RATES)
                raise ValueError(f"unknown rate {key!r}; expected some of {known}")
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{key}: expected a rate in [0, 1], got {value}")
            out[name] = value
        return out


class EstimatedOptions(Section):
    """CBPE: `metric` to estimate; breached below `min`, else outside the band `threshold: std |
    {std: k}` (k = 3) of the labelled reference's chunks (chunks the size of a window)."""

    metric: str = Field(
        "accuracy", description="The metric CBPE estimates (accuracy, precision, recall, f1, roc_auc...)."
    )
    min: float | None = Field(None, description="Breached when the estimate is below this.")
    threshold: StdBand | None = Field(
        None, description="Else breached outside the band of the labelled reference's chunks: `std` or `{std: k}`."
    )

    @field_validator("threshold", mode="before")
    @classmethod
    def _std(cls, value: Any) -> Any:
        return parse_std(value)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        from aisre.monitor.performance.cbpe import CBPE_METRICS

        if value not in CBPE_METRICS:
            raise ValueError(f"unknown metric {value!r}; estimated_performance estimates: {', '.join(CBPE_METRICS)}")
        return value

    @model_validator(mode="after")
    def _one(self) -> EstimatedOptions:
        if self.min is not None and self.threshold is not None:
            raise ValueError("give min (a constant floor) or threshold (a band from the reference), not both")
        return self
