"""The offline evaluation gate: score a golden data set through a model version, judge it against the thresholds
of `evaluation:`, store the verdict, and let promotions ask whether the version passed.

    result = evaluate_version(config, "fraud", "v2", data="golden.csv", label="is_fraud", store=store)
    result.passed, [c.name for c in result.failed]
    latest_evaluation(store, "fraud", "v2").passed         # what the registry's gate reads
    gate_problem(config, store, "fraud", "v2", "canary")   # None, or why the promotion is refused

The version is scored the way the gateway serves it (`aisre.respond.scoring`): the same joblib file in process,
or the same OIP replicas over HTTP. Quality metrics and their intervals come from
`aisre.monitor.performance.performance`, fairness gaps from `aisre.monitor.fairness.fairness`: the numbers the
monitoring jobs publish online for the same model, so offline and online never disagree on a formula.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.evaluation import ModelEvaluationConfig
from aisre.config.model import AisreConfig
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.performance import performance
from aisre.monitor.tabular.classes import canonical
from aisre.records import Signal
from aisre.respond.evaluation_checks import Check, fairness_checks, latency_checks, latency_summary, quality_checks
from aisre.respond.golden import GoldenSet, golden_set
from aisre.respond.scoring import OipScorer, Scored, SklearnScorer, file_sha256
from aisre.store.evaluations import EvaluationStore
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.store.postgres import PostgresStore

#: The signal every stored evaluation writes (1 passed, 0 failed), for dashboards and playbooks.
SIGNAL = "offline_evaluation_passed"
__all__ = [
    "SIGNAL",
    "Check",
    "EvaluationResult",
    "config_gate",
    "evaluate_version",
    "gate_problem",
    "latest_evaluation",
]


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation of one version: the verdict, every check, and what it was measured on.

    `passed` is True when every check passed (an evaluation without thresholds passes, with a note).
    `metrics` holds every quality metric of the task with its interval (`MetricValue.to_dict`), thresholded
    or not; `fairness` the full report of each fairness check; `latency` the percentiles in ms and what a
    call was (`target`: what was scored, how latency was measured, rows per call, calls).
    """

    model: str
    version: str
    ts: float
    passed: bool
    checks: list[Check]
    task: str
    data: dict[str, Any]
    target: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    fairness: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seq: int | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        from aisre.monitor.report.jsonsafe import json_safe

        doc = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("checks", "seq")}
        doc["checks"] = [c.to_dict() for c in self.checks]
        return json_safe(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], seq: int | None = None) -> EvaluationResult:
        fields = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc and k not in ("checks", "seq")}
        return cls(**fields, checks=[Check.from_dict(_numbers(c)) for c in doc.get("checks", [])], seq=seq)


def _numbers(check: dict[str, Any]) -> dict[str, Any]:
    """JSON's 'inf' strings back to floats."""
    return {k: (math.inf if v == "inf" else -math.inf if v == "-inf" else v) for k, v in check.items()}


def evaluate_version(
    config: AisreConfig,
    model: str,
    version: str,
    data: str | os.PathLike[str] | None = None,
    label: str | None = None,
    *,
    store: SQLiteStore | PostgresStore | str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    seed: int | None = 0,
) -> EvaluationResult:
    """Score `data` (default: `evaluation.<model>.data`) through `model`/`version` as configured under `models:`,
    judge it by `evaluation.<model>`, and with `store` keep the result (and the `offline_evaluation_passed`
    signal). Raises InvalidParameterError (unknown model/version, no data or label), DataError (a column
    missing, unreadable file), ConfigError (an unusable model file) or UpstreamError (a replica failed)."""
    model_cfg = config.models.get(model)
    if model_cfg is None:
        known = ", ".join(sorted(config.models)) or "none are configured"
        raise InvalidParameterError(f"model: no model {model!r} in models: ({known})")
    version_cfg = model_cfg.versions.get(version)
    if version_cfg is None:
        raise InvalidParameterError(
            f"version: model {model!r} has no version {version!r} ({', '.join(sorted(model_cfg.versions))})"
        )
    entry = config.evaluation.get(model, ModelEvaluationConfig())
    path = str(data) if data is not None else entry.data
    if path is None:
        raise InvalidParameterError(f"data: give a golden data file (or set evaluation.{model}.data)")
    label = label or entry.label
    if label is None:
        raise InvalidParameterError(f"label: name the label column (or set evaluation.{model}.label)")
    now = clock.now()
    scorer: SklearnScorer | OipScorer
    if version_cfg.sklearn:
        scorer = SklearnScorer(version_cfg.sklearn, f"models.{model}.versions.{version}.sklearn")
        features = entry.features or scorer.feature_names or None
    else:
        timeout = version_cfg.timeout_s or config.gateway.try_timeout_s
        upstream = version_cfg.upstream_model or model
        headers = dict(version_cfg.headers)
        scorer = OipScorer(version_cfg.replicas, upstream, headers, timeout, config.gateway.max_response_bytes)
        features = entry.features
    golden = golden_set(
        path, label, features, sensitive=entry.sensitive_columns, exclude=entry.exclude, sha256=file_sha256(path)
    )
    n_features = getattr(scorer, "n_features", None)
    if n_features is not None and n_features != len(golden.features):
        raise DataError(
            f"features: model {model}/{version} expects {n_features} features, {path} gives {len(golden.features)} "
            f"({', '.join(golden.features)}); list them in evaluation.{model}.features or drop some with exclude"
        )
    scored = scorer.score(golden.X, entry.batch_size)
    result = judge(model, version, now, golden, scored, entry, seed)
    if store is not None:
        result = save_evaluation(store, result)
    return result


def judge(
    model: str,
    version: str,
    ts: float,
    golden: GoldenSet,
    scored: Scored,
    entry: ModelEvaluationConfig,
    seed: int | None = 0,
) -> EvaluationResult:
    """The verdict on scored rows (exposed so a caller with its own scoring can reuse the checks)."""
    notes: list[str] = []
    task = entry.inferred_task or _task(golden.y, scored)
    y_pred = scored.predictions
    y_score: Any = scored.proba
    classes = scored.classes
    if task == "binary":
        _check_pos_label(golden, y_pred, entry)
    if y_score is not None and task == "multiclass" and classes is None:
        seen = {canonical(v) for v in [*golden.y.tolist(), *y_pred.tolist()]} - {None}
        if y_score.shape[1] != len(seen):
            notes.append("roc_auc and log_loss left out: the probability columns' classes are unknown")
            y_score = None
    if task == "regression":
        y_score = None
    kwargs: dict[str, Any] = {"confidence": entry.confidence, "n_bootstrap": entry.n_bootstrap, "seed": seed}
    if task == "binary":
        kwargs["pos_label"] = entry.pos_label
    if classes is not None and y_score is not None:
        kwargs["classes"] = classes
    report = performance(golden.y, y_pred, y_score, task, **kwargs)  # type: ignore[arg-type]
    checks = quality_checks(report, entry)
    fairness_rows, fairness_reports = fairness_checks(golden.y, y_pred, golden.sensitive, entry)
    checks += fairness_rows
    latency = latency_summary(scored.latencies_s, entry.confidence)
    checks += latency_checks(latency, entry)
    if not checks:
        notes.append(f"no thresholds are configured (evaluation.{model}): nothing was judged, so it passes")
    return EvaluationResult(
        model=model,
        version=version,
        ts=ts,
        passed=all(c.passed for c in checks),
        checks=checks,
        task=task,
        data={
            "path": str(Path(golden.path).resolve()),
            "sha256": golden.sha256,
            "rows": golden.n_rows,
            "label": golden.label,
            "features": golden.features,
        },
        target={
            "scored": scored.target,
            "artifact_sha256": scored.artifact_sha256,
            "latency_measures": scored.measures,
            "rows_per_call": scored.rows_per_call,
            "calls": len(scored.latencies_s),
        },
        metrics={name: m.to_dict() for name, m in report.metrics.items()},
        fairness=[r.to_dict() for r in fairness_reports],
        latency=latency,
        thresholds=entry.model_dump(mode="json", exclude={"data", "label"}),
        notes=notes,
    )


def _task(y: np.ndarray, scored: Scored) -> str:
    """Classification when the model gives probabilities or classes, or its answers are whole numbers; binary for
    at most two classes among labels and predictions."""
    pred = scored.predictions
    is_class = scored.proba is not None or scored.classes is not None or pred.dtype.kind in "biuOUS"
    if not is_class:
        finite = pred[np.isfinite(pred.astype(np.float64))]
        is_class = bool(np.all(finite == np.round(finite)))
    if not is_class:
        return "regression"
    seen = {canonical(v) for v in [*y.tolist(), *pred.tolist()]} - {None}
    return "binary" if len(seen) <= 2 else "multiclass"


def _check_pos_label(golden: GoldenSet, y_pred: np.ndarray, entry: ModelEvaluationConfig) -> None:
    seen = sorted(c for c in {canonical(v) for v in golden.y.tolist()} if c is not None)
    if canonical(entry.pos_label) not in seen:
        raise DataError(
            f"pos_label: {entry.pos_label!r} is not a value of label column {golden.label!r} (values: "
            f"{', '.join(seen[:10])}); set pos_label in the model's evaluation: entry"
        )


def save_evaluation(store: SQLiteStore | PostgresStore | str, result: EvaluationResult) -> EvaluationResult:
    """Append `result` to the `evaluations` table and write its `offline_evaluation_passed` signal."""
    signal = Signal(
        result.model,
        result.version,
        SIGNAL,
        1.0 if result.passed else 0.0,
        threshold=1.0,
        breached=not result.passed,
        labels={"data": Path(str(result.data.get("path", ""))).name},
        window_end=result.ts,
    )
    with EvaluationStore(store) as table:
        seq = table.add(result.model, result.version, result.ts, result.passed, result.to_dict())
        table.store.write_signals([signal], result.ts)
    return EvaluationResult.from_dict(result.to_dict(), seq)


def latest_evaluation(store: SQLiteStore | PostgresStore | str, model: str, version: str) -> EvaluationResult | None:
    """The newest stored evaluation of `model`/`version` (None: never evaluated). The gate reads `.passed`."""
    with EvaluationStore(store) as table:
        row = table.latest(model, version)
    return None if row is None else EvaluationResult.from_dict(row.report, row.seq)


def gate_problem(
    config: AisreConfig, store: SQLiteStore | PostgresStore | str, model: str, version: str, stage: str
) -> str | None:
    """Why `model`/`version` may not enter `stage` (shadow, canary, stable) under `evaluation.<model>.required_for`,
    or None when it may (the stage needs no evaluation, or the newest evaluation passed)."""
    entry = config.evaluation.get(model)
    if entry is None:
        return None
    if stage in entry.shadow_required_for:
        problem = shadow_gate_problem(store, model, version, stage)
        if problem is not None:
            return problem
    if stage not in entry.required_for:
        return None
    latest = latest_evaluation(store, model, version)
    if latest is None:
        return (
            f"{model}/{version} needs a passing offline evaluation before {stage} "
            f"(evaluation.{model}.required_for); run `aisre eval {model} {version}`"
        )
    if not latest.passed:
        failed = ", ".join(c.name for c in latest.failed) or "see its report"
        return f"{model}/{version} failed its latest offline evaluation (#{latest.seq}: {failed}); {stage} refused"
    return None


def shadow_gate_problem(store: SQLiteStore | PostgresStore | str, model: str, version: str, stage: str) -> str | None:
    """Why `version` may not enter `stage` for want of a passing shadow evaluation (its newest
    `shadow_passed` signal, as `aisre shadow report --write-signals` records it), or None."""
    from aisre.store import SQLiteStore as _Store
    from aisre.store import open_store

    if not isinstance(store, str):
        rows = store.signals(model=model, name="shadow_passed", version=version)
    else:  # a URL or path: opened for this read and closed (a postgresql:// URL opens a PostgresStore)
        db = (
            open_store(store)
            if store.startswith(("postgresql://", "postgres://"))
            else _Store(store.removeprefix("sqlite:///"))
        )
        try:
            rows = db.signals(model=model, name="shadow_passed", version=version)
        finally:
            db.close()
    if not rows:
        return (
            f"{model}/{version} needs a passing shadow evaluation before {stage} (evaluation.{model}."
            f"shadow_required_for); run `aisre shadow report {model} --shadow {version} --write-signals`"
        )
    if not rows[-1][1].value:
        return f"{model}/{version} failed its latest shadow evaluation; {stage} refused"
    return None


def config_gate(config: AisreConfig, store: SQLiteStore | PostgresStore | str) -> Callable[[str, str, str], str | None]:
    """`gate_problem` bound to a config and a store: the `gate(model, version, to)` hook of the registry."""

    def gate(model: str, version: str, to: str) -> str | None:
        return gate_problem(config, store, model, version, to)

    return gate
