"""The continuous SLO judge: every `slo_evaluation.interval`, every SLO evaluated, exported and notified.

`SLOService.tick()` is one evaluation: `aisre.slo.evaluate` per SLO (alert states carried from tick
to tick, so alerts go pending -> firing -> resolved), gauges and `aisre_slo_events_total` updated
(`aisre.slo.export`), and the alerts that fired or resolved handed to the receivers of
`notifications:` (`aisre.slo.notify`, which delivers off this thread). An SLO whose evaluation
raises is logged and counted (`aisre_slo_evaluation_errors_total`) and the others go on.

`BackgroundSLOs` runs the ticks in a daemon thread of `aisre serve` (off the event loop) and of
`aisre watch`. Exactly one process per store judges: the one holding an exclusive `flock` on
`<store>.slo.lock` (its own lock, beside the monitors' one, so the judge and the monitoring jobs
may run in different processes); the others stand by and take over when the holder exits. The
judge's state (alert states, what was exported) starts afresh in the process that takes over.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.slo.alerts import SEVERITIES, AlertEvaluator
from aisre.slo.evaluate import SLOReport, evaluate
from aisre.slo.events import NotEvaluable
from aisre.slo.export import EventExport, SLOExporter, reads_event_counter
from aisre.slo.notify import Notifier

log = logging.getLogger("aisre.slo")


def lock_path(store_path: str | os.PathLike[str]) -> Path:
    """Where the one-judge lock of a store lives: beside the database file."""
    return Path(f"{store_path}.slo.lock")


class _FixedClock:
    """`evaluate` reads the time once; one tick judges every SLO at the same instant."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now


class SLOService:
    """Judges `config.slos` against `store`; `metrics` (a `Metrics`) gets the gauges and the counter.

    Parameters
    ----------
    config: the whole `AisreConfig` (its `slos`, `slo_evaluation` and `notifications`).
    store: the `SQLiteStore` the records are in.
    clock: the time of each tick (a `ManualClock` in tests).
    metrics: where the gauges go (`None`: computed, not exported).
    """

    def __init__(
        self, config: Any, store: Any, clock: Clock = SYSTEM_CLOCK, metrics: Any = None, actuator: Any = None
    ) -> None:
        self.slos = list(config.slos)
        self.settings = config.slo_evaluation
        self.store = store
        self.clock = clock
        self.notifier = Notifier(config.notifications)
        self.exporter = SLOExporter(self.notifier.stats)
        self._registry = None if metrics is None else metrics.registry
        if self._registry is not None:
            self._registry.register(self.exporter)
        self.evaluators = {slo.name: AlertEvaluator(slo, clock, service=self.settings.service) for slo in self.slos}
        self._exports: dict[str, EventExport] | None = None  # set on the first tick: counting starts then
        self.playbooks = _playbook_runner(config, store, clock, self.notifier, actuator)
        self.canaries = _canary_controller(config, store, clock, actuator)
        self._states: dict[tuple[str, str], str] = {}
        self.last_reports: list[SLOReport] = []

    def tick(self, now: float | None = None) -> list[SLOReport]:
        """Judge every SLO at `now` (default: the clock's now), export, notify; returns the reports."""
        now = self.clock.now() if now is None else now
        if self._exports is None:
            self._exports = {
                slo.name: EventExport(slo, now, self.settings.export_lookback_s)
                for slo in self.slos
                if reads_event_counter(slo)
            }
            for name in self._exports:
                self.exporter.track_events(name)
        reports = []
        for slo in self.slos:
            try:
                reports += evaluate([slo], self.store, _FixedClock(now), self.evaluators)
            except Exception:  # one broken SLO never stops the others
                log.exception("slo %s: evaluation failed", slo.name)
                self.exporter.count_error(slo.name)
                continue
            self._export_events(slo.name, now)
            self._notify(slo, now)
        for r in reports:
            if r.problem and self._states.get((r.name, "problem")) != r.problem:
                log.warning("slo %s: %s", r.name, r.problem)
            self._states[(r.name, "problem")] = r.problem or ""
        self.exporter.update(reports)
        self.last_reports = reports
        if self.playbooks is not None:  # the playbooks act on this tick's verdicts
            self.playbooks.tick({r.name: r for r in reports})
        if self.canaries is not None:  # and the canaries walk their steps
            self.canaries.tick()
        return reports

    def _export_events(self, name: str, now: float) -> None:
        assert self._exports is not None
        export = self._exports.get(name)
        if export is None:
            return
        try:
            good, bad = export.step(self.store, now)
        except NotEvaluable:
            return  # reported by the evaluation already
        except Exception:
            log.exception("slo %s: exporting its events failed", name)
            self.exporter.count_error(name)
            return
        self.exporter.add_events(name, good, bad)

    def _notify(self, slo: Any, now: float) -> None:
        alerts = self.evaluators[slo.name].alerts
        changed = []
        for severity in SEVERITIES:
            alert = alerts[severity]
            if self._states.get((slo.name, severity), "inactive") != alert.state:
                changed.append(alert)
                if alert.state in ("firing", "resolved"):
                    log.warning("slo %s: %s alert %s", slo.name, severity, alert.state)
            self._states[(slo.name, severity)] = alert.state
        if slo.alerting.notify:
            self.notifier.dispatch(slo.alerting.notify, list(alerts.values()), changed, now)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the delivery threads (deliveries still retrying are abandoned) and leave /metrics."""
        self.notifier.stop(timeout_s)
        if self._registry is not None:
            self._registry.unregister(self.exporter)
            self._registry = None


def _playbook_runner(config: Any, store: Any, clock: Clock, notifier: Notifier, actuator: Any) -> Any:
    """The `playbooks:` of the config, run after every judging tick (None without playbooks)."""
    if not getattr(config, "playbooks", None):
        return None
    from aisre.respond.incidents import Incidents
    from aisre.respond.playbooks import PlaybookRunner, notifier_sender
    from aisre.respond.registry import configured_registry

    return PlaybookRunner(
        config.playbooks,
        store,
        registry=configured_registry(config, store, clock),
        incidents=Incidents(store, clock=clock),
        actuator=actuator,
        notify=notifier_sender(notifier),
        clock=clock,
    )


def _canary_controller(config: Any, store: Any, clock: Clock, actuator: Any) -> Any:
    """The `canaries:` of the config, walked after every judging tick (None without canaries)."""
    if not getattr(config, "canaries", None):
        return None
    from aisre.respond.canary_controller import CanaryController
    from aisre.respond.incidents import Incidents
    from aisre.respond.registry import configured_registry

    registry = configured_registry(config, store, clock)
    return CanaryController(
        config.canaries, store, registry, actuator=actuator, incidents=Incidents(store, clock=clock), clock=clock
    )


class BackgroundSLOs:
    """Runs `service.tick()` every `slo_evaluation.interval` in a daemon thread while this process
    holds `lock` (a `RunnerLock`); `retry_s` is how often a standby process tries to take over."""

    def __init__(self, service: SLOService, lock: Any, *, retry_s: float = 5.0) -> None:
        self.service = service
        self.lock = lock
        self.retry_s = retry_s
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aisre-slo", daemon=True)

    def start(self) -> BackgroundSLOs:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the tick in progress; wait up to `timeout_s`; release the lock."""
        self._stop.set()
        self._thread.join(timeout_s)
        self.service.close()
        self.lock.release()

    def _loop(self) -> None:
        interval = self.service.settings.interval_s
        announced = False
        while not self._stop.is_set():
            if not self.lock.acquire():
                if not announced:
                    log.info("slo: another process holds %s and judges the SLOs; this one stands by", self.lock.path)
                    announced = True
                self._stop.wait(self.retry_s)
                continue
            started = self.service.clock.monotonic()
            try:
                self.service.tick()
            except Exception:  # tick isolates SLOs; this is the last resort that keeps the schedule
                log.exception("slo: evaluation tick failed")
            self.ticks += 1
            spent = self.service.clock.monotonic() - started
            self._stop.wait(max(0.05, interval - spent) if math.isfinite(spent) else interval)


def start_background(
    config: Any, store: Any, clock: Clock = SYSTEM_CLOCK, metrics: Any = None, actuator: Any = None
) -> BackgroundSLOs | None:
    """Start judging `config.slos` and running `config.playbooks` (None when there are neither or
    `slo_evaluation.enabled` is false). `actuator`: what playbooks change routing through."""
    acts = getattr(config, "playbooks", None) or getattr(config, "canaries", None)
    if not (config.slos or acts) or not config.slo_evaluation.enabled:
        return None
    from aisre.locks import store_lock  # the same kind of lock the monitoring jobs use

    service = SLOService(config, store, clock, metrics, actuator)
    lock = store_lock(store, "slo", lock_path(getattr(store, "path", None) or config.store.path))
    return BackgroundSLOs(service, lock).start()
