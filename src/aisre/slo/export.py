"""The SLO judge on /metrics: gauges of the latest evaluation, and `aisre_slo_events_total` for Prometheus rules.

Gauges (one series per SLO; names in base units, ratios as `_ratio`):

- ``aisre_slo_sli_ratio{slo}``: good / total over the period (absent while the period holds no events)
- ``aisre_slo_objective_ratio{slo}``, ``aisre_slo_error_budget_remaining_ratio{slo}`` (negative when
  overspent), ``aisre_slo_time_to_exhaustion_seconds{slo}`` (+Inf when not burning)
- ``aisre_slo_burn_rate{slo, window}``: error_ratio(window) / (1 - objective) for 5m, 1h, 6h, 1d and
  every alert window
- ``aisre_slo_alert_state{slo, severity, state}``: 1 for the alert's state (inactive, pending, firing,
  resolved), 0 for the others (the enum pattern of kube-state-metrics)
- ``aisre_slo_evaluable{slo}``: 0 while the SLO cannot be judged (its `problem` is logged)
- ``aisre_slo_last_evaluation_timestamp_seconds{slo}``; counter ``aisre_slo_evaluation_errors_total{slo}``
- ``aisre_slo_notifications_total{receiver, outcome}`` (sent, failed attempts, dropped) and
  ``aisre_slo_notifications_pending{receiver}``

And the counter the Prometheus rules of every SLO not computed from request metrics read
(`aisre.slo.rules.sli_queries`): ``aisre_slo_events_total{slo, outcome="good"|"bad"}``. `EventExport`
adds each closed minute (events budgeting) or timeslice once; see its docstring for late events.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from aisre.config.slo import SLOConfig
from aisre.slo.evaluate import SLOReport
from aisre.slo.events import sli_series
from aisre.slo.rules import SLO_EVENTS_METRIC, sli_queries

MINUTE_S = 60.0
ALERT_STATES = ("inactive", "pending", "firing", "resolved")


def reads_event_counter(slo: SLOConfig) -> bool:
    """Whether the SLO's Prometheus rules read `aisre_slo_events_total` (asked of the rules themselves,
    so the exporter and the rules can never disagree about which SLOs need it)."""
    try:
        bad, _ = sli_queries(slo)
    except ValueError:  # a request SLI Prometheus cannot compute: `aisre slo rules` refuses it anyway
        return False
    return SLO_EVENTS_METRIC in bad


class EventExport:
    """Turns one SLO's closed buckets into counter increments, each event (or slice) counted once.

    Buckets are minutes for events budgeting and timeslices otherwise. Counting starts with the
    bucket open at `start_s` (the moment this process began to export; nothing before it is
    back-filled). Every tick re-reads the closed buckets of the last `lookback_s` and adds only what
    is new since the last read: good and bad events of a minute grow as late labels arrive within
    the look-back, and are added when seen. A timeslice is added once, with its verdict when first
    judged; a verdict that flips later, and anything that changes a bucket older than the look-back,
    is not re-exported (a Prometheus counter cannot change the past; docs/decisions.md).
    """

    def __init__(self, slo: SLOConfig, start_s: float, lookback_s: float) -> None:
        self.slo = slo
        self.step_s = MINUTE_S if slo.budgeting_mode == "events" else slo.timeslice_s
        self.start_s = math.floor(start_s / self.step_s) * self.step_s
        self.lookback_s = max(lookback_s, self.step_s)
        self._seen: dict[int, tuple[float, float]] = {}  # bucket index -> (good, bad) already exported

    def step(self, store: Any, now: float) -> tuple[float, float]:
        """(good, bad) to add to the counter at `now`. NotEvaluable propagates (nothing is exported)."""
        step = self.step_s
        closed = math.floor(now / step) * step
        low = max(self.start_s, math.floor((closed - self.lookback_s) / step) * step)
        if closed <= low:
            return 0.0, 0.0
        series = sli_series(self.slo, store, closed, closed - low)
        per_event = self.slo.budgeting_mode == "events"
        add_good = add_bad = 0.0
        for i, (good, total) in enumerate(zip(series.good, series.total, strict=True)):
            begin = series.start_s + i * series.step_s
            if begin < low - 1e-6 or begin + series.step_s > closed + 1e-6 or total <= 0:
                continue
            key = round(begin / step)
            bad = float(total - good)
            if per_event:
                seen_good, seen_bad = self._seen.get(key, (0.0, 0.0))
                add_good += max(0.0, float(good) - seen_good)
                add_bad += max(0.0, bad - seen_bad)
                self._seen[key] = (max(seen_good, float(good)), max(seen_bad, bad))
            elif key not in self._seen:
                add_good += float(good)
                add_bad += bad
                self._seen[key] = (float(good), bad)
        oldest = round(low / step)
        for key in [k for k in self._seen if k < oldest]:
            del self._seen[key]
        return add_good, add_bad


class SLOExporter:
    """A Prometheus collector of the judge's state (register it on a `Metrics.registry`); thread-safe.

    `notification_stats` (optional) returns {receiver: DeliveryStats} at scrape time.
    """

    def __init__(self, notification_stats: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._reports: dict[str, SLOReport] = {}
        self._events: dict[str, list[float]] = {}  # slo -> [good, bad]
        self._errors: dict[str, int] = {}
        self._notification_stats = notification_stats

    def track_events(self, slo: str) -> None:
        """Start `aisre_slo_events_total` of `slo` at 0 for both outcomes (so the first increase is a rate)."""
        with self._lock:
            self._events.setdefault(slo, [0.0, 0.0])

    def add_events(self, slo: str, good: float, bad: float) -> None:
        with self._lock:
            counts = self._events.setdefault(slo, [0.0, 0.0])
            counts[0] += good
            counts[1] += bad

    def count_error(self, slo: str) -> None:
        with self._lock:
            self._errors[slo] = self._errors.get(slo, 0) + 1

    def update(self, reports: Iterable[SLOReport]) -> None:
        with self._lock:
            for r in reports:
                self._reports[r.name] = r

    def events(self, slo: str) -> tuple[float, float]:
        with self._lock:
            good, bad = self._events.get(slo, [0.0, 0.0])
        return good, bad

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        with self._lock:
            reports = list(self._reports.values())
            events = {k: tuple(v) for k, v in self._events.items()}
            errors = dict(self._errors)
        yield from _report_gauges(reports)
        counter = CounterMetricFamily(
            SLO_EVENTS_METRIC.removesuffix("_total"),
            "SLO events (or timeslices) judged, by outcome, as the SLO's Prometheus rules read them.",
            labels=["slo", "outcome"],
        )
        for slo, (good, bad) in sorted(events.items()):
            counter.add_metric([slo, "good"], good)
            counter.add_metric([slo, "bad"], bad)
        yield counter
        failed = CounterMetricFamily(
            "aisre_slo_evaluation_errors", "SLO evaluations that raised an error (logged).", labels=["slo"]
        )
        for slo, n in sorted(errors.items()):
            failed.add_metric([slo], n)
        yield failed
        if self._notification_stats is not None:
            yield from _notification_metrics(self._notification_stats())


def _report_gauges(reports: list[SLOReport]) -> Iterable[GaugeMetricFamily]:
    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=["slo", *labels])

    sli = gauge("aisre_slo_sli_ratio", "Good / total events (or slices) over the SLO's period.")
    objective = gauge("aisre_slo_objective_ratio", "The SLO's objective (share of good events or slices).")
    remaining = gauge("aisre_slo_error_budget_remaining_ratio", "Share of the period's error budget left.")
    exhaustion = gauge("aisre_slo_time_to_exhaustion_seconds", "Seconds until the budget is spent at the 1h rate.")
    burn = gauge("aisre_slo_burn_rate", "Error ratio over the window / (1 - objective).", ("window",))
    alert = gauge("aisre_slo_alert_state", "1 for the alert's current state.", ("severity", "state"))
    evaluable = gauge("aisre_slo_evaluable", "1 when the SLO could be judged from the store, else 0.")
    last = gauge("aisre_slo_last_evaluation_timestamp_seconds", "When the SLO was last judged (Unix seconds).")
    for r in sorted(reports, key=lambda r: r.name):
        objective.add_metric([r.name], r.objective)
        evaluable.add_metric([r.name], 0.0 if r.problem else 1.0)
        last.add_metric([r.name], r.at_s)
        if r.budget is not None:
            if r.budget.sli is not None:
                sli.add_metric([r.name], r.budget.sli)
            remaining.add_metric([r.name], r.budget.remaining)
            exhaustion.add_metric([r.name], r.budget.time_to_exhaustion_s)
        for window, value in r.burn_rates.items():
            burn.add_metric([r.name, window], value)
        for severity, state in sorted(r.alerts.items()):
            for s in ALERT_STATES:
                alert.add_metric([r.name, severity, s], 1.0 if s == state else 0.0)
    yield from (sli, objective, remaining, exhaustion, burn, alert, evaluable, last)


def _notification_metrics(stats: Mapping[str, Any]) -> Iterable[Any]:
    total = CounterMetricFamily(
        "aisre_slo_notifications",
        "SLO alert deliveries: sent, failed (attempts) and dropped.",
        labels=["receiver", "outcome"],
    )
    pending = GaugeMetricFamily(
        "aisre_slo_notifications_pending", "Deliveries waiting (retrying).", labels=["receiver"]
    )
    for name, s in sorted(stats.items()):
        for outcome in ("sent", "failed", "dropped"):
            total.add_metric([name, outcome], getattr(s, outcome))
        pending.add_metric([name], s.pending)
    yield total
    yield pending
