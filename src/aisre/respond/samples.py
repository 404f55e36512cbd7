"""One arm of an experiment as arrays: errors, latencies, per-record quality, fairness inputs.

A/B, canary and shadow analyses all start from the same reduction of stored records, so it
lives here once: `ArmSample.from_records` (records with their late labels) and
`arm_from_store` (read through the store's `labeled_records`). The analyses themselves
take `ArmSample`s, so they run on synthetic arrays in a notebook or a simulation just as
on a store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from aisre.errors import InvalidParameterError
from aisre.records import InferenceRecord, Label
from aisre.records.record import Route, Status
from aisre.store.base import RecordFilter

QualityMetric = Literal["accuracy", "abs_error", "squared_error"]
QUALITY_METRICS: tuple[str, ...] = ("accuracy", "abs_error", "squared_error")


def same_value(a: Any, b: Any) -> bool:
    """Prediction equals label, comparing numbers as numbers (1 == 1.0 == "1") and the rest as text."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def record_quality(prediction: Any, truth: Any, metric: QualityMetric) -> float:
    """One record's quality: 1.0/0.0 for `accuracy`; |ŷ - y| or (ŷ - y)² for the error metrics
    (NaN when either is not a number)."""
    if metric == "accuracy":
        return 1.0 if same_value(prediction, truth) else 0.0
    try:
        diff = float(prediction) - float(truth)
    except (TypeError, ValueError):
        return math.nan
    return abs(diff) if metric == "abs_error" else diff * diff


@dataclass
class ArmSample:
    """What one arm (a version on one route) did, as arrays in arrival order.

    `errors`: 1.0 per failed request, 0.0 per success (cancelled requests left out: the
    caller left, the model did not fail). `latency_s`: seconds, successful requests only.
    `quality`: one value per labelled success (`quality_metric`: accuracy 1/0, or an error).
    `y_true`/`y_pred`/`groups`: the labelled successes again, for fairness (groups None when
    no sensitive attribute was asked for). `predictions`: every success's prediction.
    """

    version: str
    errors: np.ndarray
    latency_s: np.ndarray
    quality: np.ndarray
    quality_metric: QualityMetric = "accuracy"
    y_true: list[Any] = field(default_factory=list)
    y_pred: list[Any] = field(default_factory=list)
    groups: list[Any] | None = None
    predictions: list[Any] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return int(self.errors.size)

    @property
    def labelled(self) -> int:
        return int(np.count_nonzero(np.isfinite(self.quality)))

    @classmethod
    def from_records(
        cls,
        version: str,
        rows: Iterable[tuple[InferenceRecord, Label | None]],
        quality_metric: QualityMetric = "accuracy",
        sensitive: str | None = None,
    ) -> ArmSample:
        """Reduce (record, label-or-None) pairs; `sensitive` names a tag or an input field."""
        if quality_metric not in QUALITY_METRICS:
            raise InvalidParameterError(
                f"quality_metric: expected one of {list(QUALITY_METRICS)}, got {quality_metric!r}"
            )
        errors, latency, quality, y_true, y_pred, groups, predictions = [], [], [], [], [], [], []
        for record, label in rows:
            if record.status == Status.CANCELLED:
                continue
            failed = record.status == Status.ERROR
            errors.append(1.0 if failed else 0.0)
            if failed:
                continue
            if record.latency_s is not None:
                latency.append(record.latency_s)
            predictions.append(record.prediction)
            if label is not None and record.prediction is not None:
                quality.append(record_quality(record.prediction, label.value, quality_metric))
                y_true.append(label.value)
                y_pred.append(record.prediction)
                if sensitive is not None:
                    groups.append(sensitive_value(record, sensitive))
        return cls(
            version,
            np.asarray(errors, dtype=float),
            np.asarray(latency, dtype=float),
            np.asarray(quality, dtype=float),
            quality_metric,
            y_true,
            y_pred,
            groups if sensitive is not None else None,
            predictions,
        )


def sensitive_value(record: InferenceRecord, name: str) -> Any:
    """The sensitive attribute of a record: its tag `name`, else its input field `name`, else None."""
    if name in record.tags:
        return record.tags[name]
    if isinstance(record.inputs, dict):
        return record.inputs.get(name)
    return None


def arm_from_store(
    store: Any,
    model: str,
    version: str,
    *,
    since: float | None = None,
    until: float | None = None,
    routes: Sequence[Route] | None = (Route.PRIMARY, Route.CANARY),
    quality_metric: QualityMetric = "accuracy",
    sensitive: str | None = None,
) -> ArmSample:
    """The arm `model/version` from a store over [since, until) (epoch seconds), keeping the
    records of `routes` (default: served traffic, i.e. primary and canary; shadow answers and
    fallbacks are not what the version did for callers). None keeps every route."""
    rows = store.labeled_records(RecordFilter(model, version, since, until), only_labeled=False)
    keep = None if routes is None else {Route(r) for r in routes}
    chosen = [(r, lab) for r, lab in rows if keep is None or Route(r.route) in keep]
    return ArmSample.from_records(version, chosen, quality_metric, sensitive)


def latency_summary(latency_s: np.ndarray) -> dict[str, float]:
    """mean, p50, p95 and p99 of latencies in seconds (NaN when empty)."""
    if latency_s.size == 0:
        return {"mean": math.nan, "p50": math.nan, "p95": math.nan, "p99": math.nan}
    p50, p95, p99 = np.percentile(latency_s, [50, 95, 99])
    return {"mean": float(latency_s.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99)}
