"""The `evaluation:` section: the offline evaluation gate of each model (`aisre eval`, the registry's promotions).

    evaluation:
      fraud:                                  # a model of `models:`
        data: golden/fraud.parquet            # default golden data set (CSV or Parquet), relative to aisre.yaml
        label: is_fraud                       # default label column
        metrics: {accuracy: {min: 0.9}, log_loss: {max: 0.35}}
        fairness: [{metric: demographic_parity_difference, sensitive: sex, max: 0.1}]
        latency: {p99_ms: 50}
        use: point                            # or `bound`: judge each quality metric by its interval's worse end
        required_for: [shadow, canary, stable]  # promotions that need a passing evaluation (the default)

Metric names are checked against the statistics layer's own lists (aisre.monitor.performance.metrics,
aisre.monitor.fairness), each at its key path. A floor (`min`) is for a metric where higher is better
(accuracy, recall, roc_auc, r2), a ceiling (`max`) for one where lower is better (log_loss, mae): the
other direction is refused, because a ceiling on accuracy is almost always a typo for a floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from aisre.config import checks
from aisre.config.base import Section

if TYPE_CHECKING:
    from aisre.config.model import AisreConfig

Stage = Literal["shadow", "canary", "stable"]
#: Promotions that need a passing evaluation when `required_for` is not given (stable too: a candidate promoted
#: straight to stable must not skip the gate that shadow and canary have).
DEFAULT_REQUIRED_FOR: tuple[Stage, ...] = ("shadow", "canary", "stable")
#: Latency percentiles a threshold can name, as (key, quantile).
LATENCY_PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99, "p999_ms": 0.999}


def _quality_metrics() -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    from aisre.monitor.performance import metrics as pm

    return tuple(pm.CLASSIFICATION_METRICS), tuple(pm.REGRESSION_METRICS), frozenset(pm.HIGHER_IS_BETTER)


def _fairness_metrics() -> tuple[tuple[str, ...], frozenset[str]]:
    from aisre.monitor.fairness.groups import SUMMARY

    return tuple(SUMMARY), frozenset(n for n in SUMMARY if n.endswith("_ratio"))


class Bound(Section):
    """A floor (`min`: the value must be at least this) or a ceiling (`max`: at most this)."""

    min: float | None = Field(None, description="A floor: the value must be at least this (higher-is-better metrics).")
    max: float | None = Field(None, description="A ceiling: the value must be at most this (lower-is-better metrics).")

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min (a floor) or max (a ceiling)")
        return self


class FairnessCheck(Section):
    """A parity gap over the groups of the `sensitive` column(s) of the data file (several columns: their
    intersections). Differences take `max`, ratios (demographic_parity_ratio, disparate_impact_ratio) `min`."""

    metric: str = Field(
        description=(
            "The gap: demographic_parity_difference, demographic_parity_ratio, equal_opportunity_difference, "
            "equalized_odds_difference, disparate_impact_ratio."
        )
    )
    sensitive: list[str] = Field(min_length=1, description="The sensitive column(s) of the data file.")
    min: float | None = Field(None, description="Floor of a ratio.")
    max: float | None = Field(None, description="Ceiling of a difference.")
    method: Literal["between_groups", "to_overall"] = Field(
        "between_groups",
        description="Compare the groups with each other (`between_groups`) or each with the whole set (`to_overall`).",
    )

    @field_validator("sensitive", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("metric")
    @classmethod
    def _known(cls, name: str) -> str:
        summary, _ = _fairness_metrics()
        if name not in summary:
            raise ValueError(f"unknown fairness metric {name!r}; expected one of {', '.join(summary)}")
        return name

    @model_validator(mode="after")
    def _direction(self) -> FairnessCheck:
        _, ratios = _fairness_metrics()
        want = "min" if self.metric in ratios else "max"
        if self.min is None and self.max is None:
            raise ValueError(f"give {want}: the {'floor' if want == 'min' else 'ceiling'} of {self.metric}")
        if (self.min is not None and want == "max") or (self.max is not None and want == "min"):
            kind = "a ratio (1 = parity): give min" if want == "min" else "a difference (0 = parity): give max"
            raise ValueError(f"{self.metric} is {kind}")
        return self

    @property
    def threshold(self) -> float:
        value = self.min if self.min is not None else self.max
        assert value is not None
        return value


class LatencyCheck(Section):
    """Ceilings on latency percentiles, in milliseconds, over the calls the evaluation made."""

    p50_ms: float | None = Field(None, gt=0, description="Ceiling of the median latency, ms.")
    p90_ms: float | None = Field(None, gt=0, description="Ceiling of the 90th percentile latency, ms.")
    p95_ms: float | None = Field(None, gt=0, description="Ceiling of the 95th percentile latency, ms.")
    p99_ms: float | None = Field(None, gt=0, description="Ceiling of the 99th percentile latency, ms.")
    p999_ms: float | None = Field(None, gt=0, description="Ceiling of the 99.9th percentile latency, ms.")

    def ceilings(self) -> dict[str, float]:
        """{'p99_ms': 50.0, ...} for the percentiles given."""
        return {k: v for k in LATENCY_PERCENTILES if (v := getattr(self, k)) is not None}


class ModelEvaluationConfig(Section):
    """The gate of one model (every version is judged by the same thresholds).

    `use`: `point` judges each quality metric by its point estimate; `bound` by its confidence
    interval's worse end (the lower bound against a `min`, the upper against a `max`), so a small golden
    set must *show* the floor is met, not merely land above it. Fairness gaps have no interval and are
    always judged by their value; latency percentiles by the value, or with `bound` by the upper end of
    their distribution-free (order statistic) interval. `confidence` is the intervals' level.
    `batch_size`: rows per call to the model (1 = each row is one request, as online traffic; larger
    golden sets score faster in batches, and latency is then per batch). `features`: the input columns
    in the model's order (default: the estimator's own feature names, else every column except the label,
    the sensitive columns and `exclude`). `required_for`: promotions refused until the version passed.
    `shadow_required_for`: promotions (canary, stable) refused until the version's newest shadow
    evaluation passed (`shadow_passed` signal, written by `aisre shadow report --write-signals`).
    """

    data: str | None = Field(
        None, description="The golden data set: a CSV or Parquet file (`aisre eval --data` overrides)."
    )
    label: str | None = Field(None, description="The label column of `data` (`--label` overrides).")
    features: list[str] | None = None
    exclude: list[str] = Field(
        default_factory=list, description="Columns that are not model inputs (ids, timestamps...)."
    )
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None, description="binary, multiclass or regression; unset: inferred from the metrics."
    )
    pos_label: str | int = Field(1, description="The positive class of binary metrics.")
    metrics: dict[str, Bound] = Field(
        default_factory=dict,
        description="Quality thresholds by metric: `{accuracy: {min: 0.9}, log_loss: {max: 0.35}}`.",
    )
    fairness: list[FairnessCheck] = Field(
        default_factory=list, description="Parity gaps over sensitive columns, each with its bound."
    )
    latency: LatencyCheck = Field(LatencyCheck(), description="Ceilings on latency percentiles per call.")
    use: Literal["point", "bound"] = "point"
    confidence: float = Field(0.95, gt=0, lt=1)
    n_bootstrap: int = Field(
        1000, ge=100, le=100_000, description="Bootstrap resamples for the intervals of metrics without a closed form."
    )
    batch_size: int = Field(1, ge=1, le=100_000)
    required_for: list[Stage] = Field(default_factory=lambda: list(DEFAULT_REQUIRED_FOR))
    shadow_required_for: list[Stage] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, metrics: dict[str, Bound]) -> dict[str, Bound]:
        classification, regression, higher = _quality_metrics()
        found = []
        for name, bound in metrics.items():
            if name not in (*classification, *regression):
                known = ", ".join((*classification, *regression))
                found.append(checks.Problem((name,), f"unknown metric {name!r}; expected one of {known}"))
            elif name in higher and bound.max is not None:
                found.append(checks.Problem((name, "max"), f"higher {name} is better: give min (a floor)"))
            elif name not in higher and bound.min is not None:
                found.append(checks.Problem((name, "min"), f"lower {name} is better: give max (a ceiling)"))
        checks.raise_all(found, "metrics")
        return metrics

    @model_validator(mode="after")
    def _one_task(self) -> ModelEvaluationConfig:
        classification, regression, _ = _quality_metrics()
        kinds = {"regression" if m in regression else "classification" for m in self.metrics}
        found = []
        if len(kinds) > 1:
            found.append(checks.Problem(("metrics",), "mixes regression and classification metrics; pick one task"))
        task = self.inferred_task
        if task is not None:
            wanted = regression if task == "regression" else classification
            for name in self.metrics:
                if name not in wanted and len(kinds) == 1:
                    found.append(checks.Problem(("metrics", name), f"not a metric of task {task!r}"))
            if self.fairness and task != "binary":
                found.append(checks.Problem(("fairness",), f"fairness gaps need a binary task, not {task!r}"))
        checks.raise_all(found, "ModelEvaluationConfig")
        return self

    @property
    def inferred_task(self) -> str | None:
        """`task`, else regression when a regression metric is named, else None (decided from the labels)."""
        if self.task is not None:
            return self.task
        _, regression, _ = _quality_metrics()
        return "regression" if any(m in regression for m in self.metrics) else None

    @property
    def sensitive_columns(self) -> list[str]:
        return list(dict.fromkeys(c for f in self.fairness for c in f.sensitive))


def _models_exist(
    evaluation: dict[str, ModelEvaluationConfig], info: ValidationInfo
) -> dict[str, ModelEvaluationConfig]:
    """With a `models:` section, each entry names a served model (the gate judges what the gateway serves)."""
    models = info.data.get("models") or {}
    if models:
        known = ", ".join(sorted(models))
        found = [checks.Problem((m,), f"no model {m!r} in models: ({known})") for m in evaluation if m not in models]
        checks.raise_all(found, "evaluation")
    return evaluation


#: The type of `AisreConfig.evaluation` (declared after `models`, which it refers to).
EvaluationSection = Annotated[dict[str, ModelEvaluationConfig], AfterValidator(_models_exist)]


def evaluation_problems(config: AisreConfig) -> list[checks.Problem]:
    """Start-up checks (`aisre check-config`): a named golden data set exists, reads as CSV or Parquet, and has
    the label, feature and sensitive columns its entry names. Reads only the file's header / schema."""
    found = []
    for model, entry in config.evaluation.items():
        if entry.data is None:
            continue
        loc: checks.Loc = ("evaluation", model, "data")
        try:
            columns = data_columns(entry.data)
        except (OSError, ValueError) as exc:
            found.append(checks.Problem(loc, str(exc)))
            continue
        wanted = [("label", entry.label)] if entry.label else []
        wanted += [("features", c) for c in entry.features or []]
        wanted += [("fairness", c) for c in entry.sensitive_columns]
        for key, column in wanted:
            if column not in columns:
                found.append(
                    checks.Problem(
                        (*loc[:2], key),
                        f"column {column!r} is not in {entry.data}; columns found: {', '.join(columns)}",
                    )
                )
    return found


def data_columns(path: str) -> list[str]:
    """The column names of a CSV (its header line) or Parquet file (its schema); ValueError/OSError if unreadable."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no such file {path}" if not file.exists() else f"{path} is not a file")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(file).names)
        except pa.ArrowException as exc:
            raise ValueError(f"cannot read {path} as Parquet: {exc}") from None
    if suffix in (".csv", ".tsv"):
        import csv

        with file.open(newline="", encoding="utf-8") as f:
            try:
                header = next(csv.reader(f, delimiter="\t" if suffix == ".tsv" else ","), None)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise ValueError(f"cannot read {path} as CSV: {exc}") from None
        if not header:
            raise ValueError(f"{path} is empty; expected a header line naming the columns")
        return header
    raise ValueError(f"expected a .csv, .tsv or .parquet file, got {file.name}")
