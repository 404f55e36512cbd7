"""The checks of an offline evaluation: quality metrics (with intervals), fairness gaps and latency percentiles,
each judged against its threshold from `evaluation:`. Statistics come from the monitor's one implementation
(`aisre.monitor.performance.performance`, `aisre.monitor.fairness.fairness`); only latency is computed here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import binom

from aisre.config.evaluation import LATENCY_PERCENTILES, ModelEvaluationConfig
from aisre.monitor.fairness import FairnessReport, fairness
from aisre.monitor.performance import PerformanceReport

Kind = Literal["quality", "fairness", "latency"]


@dataclass(frozen=True)
class Check:
    """One row of the report. `value` is the point estimate, [`lower`, `upper`] its interval (None: no interval),
    `threshold` a floor (`direction` min) or a ceiling (max); `judged` is the number compared with it (the value,
    or with `use: bound` the interval's worse end, as `judged_by` says). A value that is undefined (NaN) fails:
    an evaluation that cannot show the floor is met does not pass."""

    kind: Kind
    name: str
    value: float | None
    lower: float | None
    upper: float | None
    threshold: float
    direction: Literal["min", "max"]
    judged: float | None
    judged_by: str
    passed: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def _finite(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return value


def _judge(
    kind: Kind,
    name: str,
    value: float,
    interval: tuple[float, float] | None,
    threshold: float,
    direction: Literal["min", "max"],
    use_bound: bool,
    note: str | None = None,
) -> Check:
    lower, upper = interval if interval is not None else (None, None)
    judged: float | None = value
    judged_by = "value"
    if use_bound and interval is not None:
        judged, judged_by = (lower, "lower bound") if direction == "min" else (upper, "upper bound")
    if judged is None or math.isnan(judged):
        passed = False
        note = note or f"{name} is undefined on this data, so the threshold cannot be shown to hold"
    else:
        passed = judged >= threshold if direction == "min" else judged <= threshold
    return Check(kind, name, value, lower, upper, threshold, direction, judged, judged_by, bool(passed), note)


def quality_checks(report: PerformanceReport, entry: ModelEvaluationConfig) -> list[Check]:
    out = []
    for name, bound in entry.metrics.items():
        direction: Literal["min", "max"] = "min" if bound.min is not None else "max"
        threshold = bound.min if bound.min is not None else bound.max
        assert threshold is not None
        m = report.metrics.get(name)
        if m is None:  # the metric is not one of this task's (the config did not say the task)
            out.append(
                _judge("quality", name, math.nan, None, threshold, direction, False, f"not a {report.task} metric")
            )
            continue
        interval = None if math.isnan(m.lower) and math.isnan(m.upper) else (m.lower, m.upper)
        out.append(_judge("quality", name, m.value, interval, threshold, direction, entry.use == "bound", m.note))
    return out


def fairness_checks(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: dict[str, np.ndarray], entry: ModelEvaluationConfig
) -> tuple[list[Check], list[FairnessReport]]:
    checks, reports = [], []
    for spec in entry.fairness:
        groups: Any = (
            sensitive[spec.sensitive[0]] if len(spec.sensitive) == 1 else {c: sensitive[c] for c in spec.sensitive}
        )
        report = fairness(
            y_true,
            y_pred,
            groups,
            pos_label=entry.pos_label,
            method=spec.method,
            thresholds={spec.metric: spec.threshold},
            sensitive_name=",".join(spec.sensitive),
        )
        reports.append(report)
        direction: Literal["min", "max"] = "min" if spec.min is not None else "max"
        name = f"{spec.metric}[{','.join(spec.sensitive)}]"
        note = "; ".join(report.notes) or None
        checks.append(
            _judge("fairness", name, getattr(report, spec.metric), None, spec.threshold, direction, False, note)
        )
    return checks, reports


def latency_summary(latencies_s: np.ndarray, confidence: float) -> dict[str, Any]:
    """Percentiles (numpy's linear interpolation) of the calls' latencies in ms, each with a distribution-free
    interval from order statistics: [x(l), x(u)] with l, u the binomial(n, q) quantiles at (1 ± confidence)/2,
    so it holds for any latency distribution. Too few calls for an upper end: +inf (say so, do not guess)."""
    ms = np.sort(np.asarray(latencies_s, dtype=np.float64) * 1000.0)
    n = len(ms)
    alpha = 1.0 - confidence
    out: dict[str, Any] = {"calls": n, "mean_ms": float(ms.mean()), "max_ms": float(ms[-1]), "percentiles": {}}
    for key, q in LATENCY_PERCENTILES.items():
        lo = int(binom.ppf(alpha / 2, n, q))
        hi = int(binom.ppf(1 - alpha / 2, n, q)) + 1
        lower = float(ms[lo - 1]) if lo >= 1 else 0.0
        upper = float(ms[hi - 1]) if hi <= n else math.inf
        out["percentiles"][key] = {"value": float(np.percentile(ms, q * 100)), "lower": lower, "upper": upper}
    return out


def latency_checks(summary: dict[str, Any], entry: ModelEvaluationConfig) -> list[Check]:
    out = []
    for key, ceiling in entry.latency.ceilings().items():
        p = summary["percentiles"][key]
        note = None
        if entry.use == "bound" and math.isinf(p["upper"]):
            # x(n) bounds the q-quantile from above once P(all n calls fall below it) = q^n < alpha / 2.
            needed = math.ceil(math.log((1 - entry.confidence) / 2) / math.log(LATENCY_PERCENTILES[key]))
            note = (
                f"{summary['calls']} calls are too few for an upper bound on {key} at confidence "
                f"{entry.confidence:g} (it takes at least {needed}): more golden rows or a smaller batch_size"
            )
        out.append(
            _judge("latency", key, p["value"], (p["lower"], p["upper"]), ceiling, "max", entry.use == "bound", note)
        )
    return out
