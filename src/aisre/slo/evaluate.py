"""The embedded evaluator: every SLO of the config judged from the store at one instant.

For each SLO: the series of good/total counts over its period (`aisre.slo.events`), its budget
(`budget_status`: SLI = good/total, remaining = 1 - error_ratio(period)/(1 - objective)), the burn
rate over each of `STATUS_WINDOWS` and every alert window (error_ratio(w)/(1 - objective)), and
the page/ticket alert states from an `AlertEvaluator`.

One call is one evaluation tick: pass the same `evaluators` dict on every call (as a long-running
server does) to carry pending/firing/resolved across ticks; without it each call starts fresh, so
an alert is `firing` or `inactive`, never `resolved`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.slo import SLOConfig, parse_duration
from aisre.slo.alerts import AlertEvaluator
from aisre.slo.budget import BudgetStatus, MinuteSeries, budget_status, burn_rate
from aisre.slo.events import NotEvaluable, sli_series
from aisre.store.sqlite import SQLiteStore

#: Burn-rate windows shown by `aisre slo status`, besides every alert window of the SLO.
STATUS_WINDOWS = ("5m", "1h", "6h", "1d")


@dataclass(frozen=True)
class SLOReport:
    """One SLO at `at_s`. `problem` is set (and the numbers None) when the SLO is not evaluable yet."""

    name: str
    model: str
    objective: float
    budgeting: str
    at_s: float
    budget: BudgetStatus | None = None
    burn_rates: dict[str, float] = field(default_factory=dict)
    """error_ratio(w) / (1 - objective) per window name (5m, 1h, ... and the alert windows)."""
    alerts: dict[str, str] = field(default_factory=dict)
    """Alert state per severity: inactive, pending, firing or resolved."""
    problem: str | None = None
    freeze_promotions: bool = False
    """The budget is spent (remaining <= 0) and the SLO's policy says `freeze_promotions_when_exhausted`:
    the control loop must not promote a new version of this model (see `promotions_frozen`)."""
    version: str | None = None

    @property
    def sli(self) -> float | None:
        """good / total over the period; None with no events (or when not evaluable)."""
        return None if self.budget is None else self.budget.sli

    def to_dict(self) -> dict[str, Any]:
        b = self.budget
        return {
            "slo": self.name,
            "model": self.model,
            "objective": self.objective,
            "budgeting": self.budgeting,
            "at": self.at_s,
            "sli": self.sli,
            "good": None if b is None else b.good,
            "total": None if b is None else b.total,
            "budget_remaining": None if b is None else b.remaining,
            "budget_consumed": None if b is None else b.consumed,
            "current_burn_rate": None if b is None else b.current_burn_rate,
            "time_to_exhaustion_s": None if b is None or math.isinf(b.time_to_exhaustion_s) else b.time_to_exhaustion_s,
            "burn_rates": dict(self.burn_rates),
            "alerts": dict(self.alerts),
            "problem": self.problem,
            "freeze_promotions": self.freeze_promotions,
        }


def window_names(slo: SLOConfig) -> list[str]:
    """STATUS_WINDOWS, then every alert window not already there, shortest first."""
    names = list(STATUS_WINDOWS)
    for severity in ("page", "ticket"):
        for w in getattr(slo.alerting, severity):
            names += [n for n in (w.short, w.long) if n not in names]
    return sorted(names, key=parse_duration)


def evaluate_one(slo: SLOConfig, store: SQLiteStore, at_s: float, evaluator: AlertEvaluator | None = None) -> SLOReport:
    """One SLO at `at_s` (see the module docstring); never raises for an SLO that cannot be judged."""
    try:
        series = sli_series(slo, store, at_s)
    except NotEvaluable as exc:
        return _unevaluable(slo, at_s, f"not yet evaluable: {exc}")
    except ValueError as exc:  # InvalidParameterError: a bad `where` key
        return _unevaluable(slo, at_s, str(exc))
    return report_from_series(slo, series, at_s, evaluator)


def _unevaluable(slo: SLOConfig, at_s: float, problem: str) -> SLOReport:
    return SLOReport(slo.name, slo.model, slo.objective, slo.budgeting_mode, at_s, problem=problem, version=slo.version)


def promotions_frozen(reports: list[SLOReport], model: str, version: str | None = None) -> list[str]:
    """The SLOs whose budget policy freezes promotions of `model` (to `version`) right now, by name.

    An SLO on the whole model (no version) freezes every version of it; one on a version freezes
    that version. Empty: promotion is allowed. This is what the control loop reads before it
    promotes a canary (`freeze_promotions_when_exhausted`).
    """
    return [
        r.name
        for r in reports
        if r.freeze_promotions and r.model == model and (r.version is None or version is None or r.version == version)
    ]


def report_from_series(
    slo: SLOConfig, series: MinuteSeries, at_s: float, evaluator: AlertEvaluator | None = None
) -> SLOReport:
    """The report for an already-built series (what `evaluate_one` does after reading the store)."""
    evaluator = evaluator or AlertEvaluator(slo)
    evaluator.tick(series, at_s)
    budget = budget_status(slo, series, at_s)
    return SLOReport(
        name=slo.name,
        model=slo.model,
        version=slo.version,
        objective=slo.objective,
        budgeting=slo.budgeting_mode,
        at_s=at_s,
        budget=budget,
        freeze_promotions=slo.policy.freeze_promotions_when_exhausted and budget.total > 0 and budget.exhausted,
        burn_rates={w: burn_rate(slo, series, at_s, parse_duration(w)) for w in window_names(slo)},
        alerts={severity: alert.state for severity, alert in evaluator.alerts.items()},
    )


def evaluate(
    slos: list[SLOConfig],
    store: SQLiteStore,
    clock: Clock = SYSTEM_CLOCK,
    evaluators: dict[str, AlertEvaluator] | None = None,
) -> list[SLOReport]:
    """Every SLO judged at `clock.now()`, in config order. `evaluators` (by SLO name) keeps alert
    states across calls; it is filled in for SLOs it lacks."""
    now = clock.now()
    reports = []
    for slo in slos:
        evaluator = None
        if evaluators is not None:
            evaluator = evaluators.setdefault(slo.name, AlertEvaluator(slo, clock))
        reports.append(evaluate_one(slo, store, now, evaluator))
    return reports


def history(slo: SLOConfig, store: SQLiteStore, end_s: float, step_s: float) -> list[tuple[float, float | None]]:
    """(time, budget remaining) every `step_s` over the period ending at `end_s`, oldest first.

    Each point is the rolling-period remaining budget at that time, so the series reads twice the
    period from the store. None where that period holds no events. NotEvaluable as `sli_series`.
    """
    series = sli_series(slo, store, end_s, 2 * slo.period_s)
    n = max(int(slo.period_s // step_s), 1)
    points = []
    for i in range(n, -1, -1):
        at = end_s - i * step_s
        status = budget_status(slo, series, at)
        points.append((at, None if status.total == 0 else status.remaining))
    return points
