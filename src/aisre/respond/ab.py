"""A/B report: two versions' stored traffic compared with significance, effect sizes and a verdict.

The gateway's weighted split (sticky by caller or header: `routing.ModelRoute.choose` hashes
the key, so a caller always lands on the same version) records each request under the
version that served it; the arm of a record is therefore its `version`, and the report
keeps served traffic only (routes primary and canary: shadow answers and fallbacks are not
what an arm did for its callers). Callers (key ids) seen in both arms are counted, which
shows whether assignment was really sticky.

Every metric gets a two-sided fixed-sample test (pooled z for rates, Welch for means), the
difference b - a with its interval (Newcombe for rates, Welch-Satterthwaite for means) and
the relative lift. With `sequential=True` the verdict uses the always-valid mSPRT p-value
instead, which stays valid however many times the report was looked at before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.records.record import Route
from aisre.respond import stats
from aisre.respond.samples import ArmSample, QualityMetric, latency_summary
from aisre.store.base import RecordFilter

Verdict = Literal["A wins", "B wins", "no difference yet"]
PRIMARY_METRICS = ("auto", "quality", "error_rate", "latency")


@dataclass
class Comparison:
    """One metric across arms; `lower_is_better` orients the winner; `sequential` is set when asked for."""

    metric: str
    a: float
    b: float
    n_a: int
    n_b: int
    lower_is_better: bool
    difference: stats.Effect
    lift: stats.Effect
    test: stats.TestResult
    sequential: stats.SequentialResult | None = None

    def p_value(self, sequential: bool) -> float:
        return self.sequential.p_value if sequential and self.sequential is not None else self.test.p_value

    def better(self, alpha: float, sequential: bool) -> str | None:
        """'a', 'b' or None (no significant difference at `alpha`)."""
        p = self.p_value(sequential)
        if math.isnan(p) or p > alpha or self.a == self.b:
            return None
        b_higher = self.b > self.a
        return "a" if b_higher == self.lower_is_better else "b"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("difference", "lift", "test", "sequential"):
            value = getattr(self, name)
            out[name] = None if value is None else value.to_dict()
        return out


@dataclass
class ABReport:
    a: str
    b: str
    verdict: Verdict
    primary_metric: str
    alpha: float
    sequential: bool
    comparisons: list[Comparison]
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "comparisons"}
        out["comparisons"] = [c.to_dict() for c in self.comparisons]
        return out


def _rate(
    metric: str, a: np.ndarray, b: np.ndarray, lower: bool, conf: float, seq: bool, tau2: float | None
) -> Comparison:
    xa, xb, na, nb = float(a.sum()), float(b.sum()), int(a.size), int(b.size)
    pa = xa / na if na else math.nan
    pb = xb / nb if nb else math.nan
    lift = stats.relative_lift(pa, pa * (1 - pa), na, pb, pb * (1 - pb), nb, conf) if na and nb else _nan_effect(conf)
    return Comparison(
        metric,
        pa,
        pb,
        na,
        nb,
        lower,
        stats.proportion_difference(xa, na, xb, nb, conf),
        lift,
        stats.two_proportion_ztest(xa, na, xb, nb),
        stats.msprt_proportions(a, b, tau2) if seq else None,
    )


def _mean(
    metric: str, a: np.ndarray, b: np.ndarray, lower: bool, conf: float, seq: bool, tau2: float | None
) -> Comparison:
    ma = float(a.mean()) if a.size else math.nan
    mb = float(b.mean()) if b.size else math.nan
    va = float(a.var(ddof=1)) if a.size > 1 else math.nan
    vb = float(b.var(ddof=1)) if b.size > 1 else math.nan
    return Comparison(
        metric,
        ma,
        mb,
        int(a.size),
        int(b.size),
        lower,
        stats.mean_difference(a, b, conf),
        stats.relative_lift(ma, va, a.size, mb, vb, b.size, conf),
        stats.welch_ttest(a, b),
        stats.msprt_means(a, b, tau2) if seq else None,
    )


def _nan_effect(conf: float) -> stats.Effect:
    return stats.Effect(math.nan, math.nan, math.nan, conf, "none")


def compare_arms(
    a: ArmSample,
    b: ArmSample,
    *,
    alpha: float = 0.05,
    primary: str = "auto",
    sequential: bool = False,
    tau2: dict[str, float] | None = None,
    min_labels: int = 30,
) -> ABReport:
    """Compare arm a (control) and arm b (treatment); pure (arrays in, report out).

    `primary`: the metric the verdict is about; "auto" = labelled quality when both arms have
    `min_labels` labels, else the error rate. `tau2`: mSPRT mixing variance per metric
    (keys error_rate, latency_mean_s, the quality metric), default as in `stats.msprt_*`.
    """
    if not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    if primary not in PRIMARY_METRICS:
        raise InvalidParameterError(f"primary: expected one of {list(PRIMARY_METRICS)}, got {primary!r}")
    conf = 1 - alpha
    t = tau2 or {}
    notes: list[str] = []
    comparisons = [
        _rate("error_rate", a.errors, b.errors, True, conf, sequential, t.get("error_rate")),
        _mean("latency_mean_s", a.latency_s, b.latency_s, True, conf, sequential, t.get("latency_mean_s")),
    ]
    qa, qb = a.quality[np.isfinite(a.quality)], b.quality[np.isfinite(b.quality)]
    has_quality = min(qa.size, qb.size) >= min_labels
    if qa.size and qb.size:
        metric = a.quality_metric
        fn = _rate if metric == "accuracy" else _mean
        comparisons.append(fn(metric, qa, qb, metric != "accuracy", conf, sequential, t.get(metric)))
    if primary == "auto":
        primary = "quality" if has_quality else "error_rate"
        if not has_quality:
            notes.append(f"fewer than {min_labels} labelled records an arm: the verdict is on the error rate")
    name = {"quality": a.quality_metric, "latency": "latency_mean_s"}.get(primary, primary)
    chosen = next((c for c in comparisons if c.metric == name), None)
    if chosen is None:
        raise InvalidParameterError(f"primary: {primary!r} has no data in both arms (no labelled records)")
    winner = chosen.better(alpha, sequential)
    verdict: Verdict = "no difference yet" if winner is None else "A wins" if winner == "a" else "B wins"
    return ABReport(
        a.version,
        b.version,
        verdict,
        chosen.metric,
        alpha,
        sequential,
        comparisons,
        {"a": _arm(a), "b": _arm(b)},
        notes=notes,
    )


def _arm(arm: ArmSample) -> dict[str, Any]:
    return {
        "version": arm.version,
        "requests": arm.requests,
        "errors": int(arm.errors.sum()),
        "error_rate": float(arm.errors.mean()) if arm.requests else math.nan,
        "latency_s": latency_summary(arm.latency_s),
        "labelled": arm.labelled,
        "quality_metric": arm.quality_metric,
        "quality": float(np.nanmean(arm.quality)) if arm.labelled else math.nan,
    }


def ab_report(
    store: Any,
    model: str,
    a: str,
    b: str,
    *,
    since: float | None = None,
    until: float | None = None,
    alpha: float = 0.05,
    primary: str = "auto",
    sequential: bool = False,
    quality_metric: QualityMetric = "accuracy",
    routes: Sequence[Route] = (Route.PRIMARY, Route.CANARY),
) -> ABReport:
    """The A/B report of versions `a` and `b` of `model` from a store over [since, until) (epoch s)."""
    if a == b:
        raise InvalidParameterError(f"b: expected a version other than a ({a!r})")
    arms, callers = [], []
    for version in (a, b):
        rows = store.labeled_records(RecordFilter(model, version, since, until), only_labeled=False)
        rows = [(r, lab) for r, lab in rows if Route(r.route) in set(routes)]
        arms.append(ArmSample.from_records(version, rows, quality_metric))
        callers.append({r.key_id for r, _ in rows if r.key_id})
    for arm in arms:
        if arm.requests == 0:
            raise DataError(f"{model}/{arm.version}: no served records in the window")
    report = compare_arms(arms[0], arms[1], alpha=alpha, primary=primary, sequential=sequential)
    report.model = model
    both = callers[0] & callers[1]
    if both:
        report.notes.append(f"{len(both)} caller(s) seen in both arms: assignment was not sticky for them")
    return report
