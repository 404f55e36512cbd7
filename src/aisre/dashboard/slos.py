"""SLO summaries and burn-down series for the dashboard, from the SLO minute buckets via `aisre.slo`.

Every number is the embedded evaluator's (`aisre.slo.evaluate.report_from_series` over `sli_series`),
so the dashboard, `aisre slo status` and the control loop agree. Alert states come from an
`AlertEvaluator` replayed over the recent past (`ALERT_REPLAY_S` at `ALERT_REPLAY_TICK_S` ticks), which gives a
firing alert its `since` even in a dashboard that was not running when it fired.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from aisre.config import AisreConfig
from aisre.config.slo import SLOConfig, parse_duration
from aisre.dashboard.params import TimeRange, UnknownItem
from aisre.slo.alerts import AlertEvaluator
from aisre.slo.budget import MinuteSeries, budget_status, burn_rate
from aisre.slo.evaluate import SLOReport, report_from_series
from aisre.slo.events import NotEvaluable, sli_series
from aisre.store.sqlite import SQLiteStore

ALERT_REPLAY_S = 6 * 3600.0
ALERT_REPLAY_TICK_S = 300.0
#: Summaries are reused for this long (wall time) at the same minute of the clock: the overview and the
#: SLO page poll them, and complete minutes are all a budget reads.
SUMMARY_TTL_S = 5.0
#: Burn-rate series drawn under the burn-down chart.
BURN_WINDOWS = ("1h", "6h")
MAX_TICKS = 1_500


def _longest_window_s(slo: SLOConfig) -> float:
    windows = [parse_duration(w.long) for s in ("page", "ticket") for w in getattr(slo.alerting, s)]
    return max([3600.0, *windows])


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _replay(
    slo: SLOConfig, series: MinuteSeries, start: float, end: float, tick_s: float
) -> tuple[AlertEvaluator, list]:
    """An evaluator ticked from `start` to `end`; the state changes seen, as (at, severity, state)."""
    evaluator = AlertEvaluator(slo)
    changes = []
    ticks = min(MAX_TICKS, max(1, math.ceil((end - start) / tick_s)))
    tick_s = (end - start) / ticks
    for i in range(ticks + 1):
        at = min(start + i * tick_s, end)
        for alert in evaluator.tick(series, at):
            changes.append((at, alert.severity, alert.state))
    return evaluator, changes


class SLOViews:
    def __init__(self, config: AisreConfig, store: SQLiteStore) -> None:
        self.config = config
        self.store = store
        self._lock = threading.Lock()
        self._cached: tuple[int, float, list[dict[str, Any]]] | None = None

    def _slo(self, name: str) -> SLOConfig:
        for slo in self.config.slos:
            if slo.name == name:
                return slo
        known = ", ".join(s.name for s in self.config.slos) or "none configured"
        raise UnknownItem("name", f"unknown SLO {name!r}; known: {known}")

    def summaries(self, now: float) -> list[dict[str, Any]]:
        key = math.floor(now / 60)
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == key and time.monotonic() - cached[1] < SUMMARY_TTL_S:
                return [dict(s) for s in cached[2]]
        out = [self.summary(slo, now) for slo in self.config.slos]
        with self._lock:
            self._cached = (key, time.monotonic(), out)
        return [dict(s) for s in out]

    def summary(self, slo: SLOConfig, now: float) -> dict[str, Any]:
        try:
            series = sli_series(slo, self.store, now, slo.period_s + ALERT_REPLAY_S + _longest_window_s(slo))
        except (NotEvaluable, ValueError) as exc:
            return _summary(slo, None, [], f"not yet evaluable: {exc}")
        evaluator, _ = _replay(slo, series, now - ALERT_REPLAY_S, now, ALERT_REPLAY_TICK_S)
        report = report_from_series(slo, series, now, evaluator)
        alerts = [
            {
                "severity": severity,
                "state": alert.state,
                "since": {"firing": alert.fired_at_s, "resolved": alert.resolved_at_s}.get(
                    alert.state, alert.active_since_s
                ),
            }
            for severity, alert in evaluator.alerts.items()
        ]
        return _summary(slo, report, alerts, None)

    def detail(self, name: str, rng: TimeRange, now: float) -> dict[str, Any]:
        slo = self._slo(name)
        summary = self.summary(slo, now)
        t = rng.starts
        out: dict[str, Any] = {"slo": summary, "step": rng.step_s, "t": t}
        ends = [min(x + rng.step_s, rng.until) for x in t]
        try:
            length = (rng.until - rng.first) + slo.period_s + _longest_window_s(slo)
            series = sli_series(slo, self.store, rng.until, length)
        except (NotEvaluable, ValueError):
            out.update(budget_remaining=[None] * len(t), sli=[None] * len(t), events=[])
            out["burn_rate"] = {w: [None] * len(t) for w in BURN_WINDOWS}
            return out
        remaining, sli = [], []
        for end, start in zip(ends, t, strict=True):
            status = budget_status(slo, series, end)
            remaining.append(None if status.total == 0 else status.remaining)
            good, total = series.counts(end, max(end - start, series.step_s))
            sli.append(None if total == 0 else good / total)
        out["budget_remaining"] = remaining
        out["sli"] = sli
        out["burn_rate"] = {
            w: [_finite(burn_rate(slo, series, end, parse_duration(w))) for end in ends] for w in BURN_WINDOWS
        }
        _, changes = _replay(slo, series, rng.since, rng.until, min(float(rng.step_s), 300.0))
        out["events"] = [{"t": at, "severity": severity, "state": state} for at, severity, state in changes]
        return out


def _summary(slo: SLOConfig, report: SLOReport | None, alerts: list, problem: str | None) -> dict[str, Any]:
    b = None if report is None else report.budget
    return {
        "name": slo.name,
        "model": slo.model,
        "version": slo.version,
        "kind": slo.sli.kind,
        "objective": slo.objective,
        "period_s": slo.period_s,
        "budgeting": slo.budgeting_mode,
        "sli": None if b is None else b.sli,
        "budget_remaining": None if b is None or b.total == 0 else b.remaining,
        "budget_consumed": None if b is None or b.total == 0 else b.consumed,
        "burn_rates": {} if report is None else {w: _finite(r) for w, r in report.burn_rates.items()},
        "time_to_exhaustion_s": None if b is None else _finite(b.time_to_exhaustion_s),
        "alerts": alerts,
        "freeze_promotions": False if report is None else report.freeze_promotions,
        "problem": problem if report is None else report.problem,
    }
