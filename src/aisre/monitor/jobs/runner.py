"""The monitoring jobs of `monitors:`, run on a schedule: every complete window, once, signals published.

`MonitorRunner.run_due(now)` is the whole loop body; `aisre watch` and the background thread
of `aisre serve` call it. For each due job it checks every complete window it has not checked
yet (tumbling windows aligned to the epoch, or every N records), publishes the signals (store
+ gauges) with a `monitor` label naming the job, and remembers the last window end: in memory,
and in the store as the job's latest `window_rows` signal, so a restart neither redoes nor
skips a window. A window that cannot be checked (bad reference, too few rows, any error)
records a `monitor_job_error{monitor,reason}` signal in the store (its text in an `error`
label there, never on a gauge), a log line and `aisre_monitor_job_errors_total`, and the
schedule goes on. Not yet: late labels re-evaluating the windows they belong to.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

from aisre.clock import Clock
from aisre.config.monitors import MonitorJobConfig
from aisre.errors import AisreError
from aisre.monitor.jobs import relabel
from aisre.monitor.jobs.reference import JobReference, load_reference
from aisre.monitor.jobs.signals import publish
from aisre.monitor.jobs.window import WindowChecks
from aisre.records import Signal
from aisre.store.base import RecordFilter

log = logging.getLogger("aisre.monitor.jobs")
ALL_VERSIONS = "*"  # the version of a job's progress marker when it watches every version


class _WindowFailed(Exception):
    """A window could not be checked; `reason` is a low-cardinality label (bad_reference, too_few_rows)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MonitorRunner:
    """Runs `config.monitors` against `store` on `clock`; `metrics` (a `Metrics`) gets the gauges."""

    def __init__(self, config: Any, store: Any, clock: Clock, metrics: Any = None) -> None:
        self.jobs: list[MonitorJobConfig] = list(config.monitors)
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._next_run: dict[str, float] = {}
        self._last_end: dict[str, float | None] = {}
        self._references: dict[str, JobReference] = {}
        self._waiting: set[str] = set()  # jobs whose stored reference range has not ended yet (logged once)
        self._windows = WindowChecks(store)
        self._errors = _error_counter(metrics)
        self.last_errors: list[str] = []  # what went wrong in the latest `run_due`, one line per window

    def next_due(self) -> float:
        """When the earliest job is due next (epoch seconds; now if any never ran)."""
        return min((self._next_run.get(j.name, 0.0) for j in self.jobs), default=math.inf)

    def run_due(self, now: float | None = None) -> list[Signal]:
        """Run every job that is due at `now`; returns the signals published."""
        now = self.clock.now() if now is None else now
        self.last_errors = []
        out: list[Signal] = []
        for job in self.jobs:
            if now < self._next_run.get(job.name, -math.inf):
                continue
            self._next_run[job.name] = now + job.schedule_s
            try:
                out += self._run_job(job, now)
                out += self._recheck_labels(job, now)
            except Exception as exc:  # one broken job never stops the others, nor the schedule
                self._record_error(job, None, None, "error", f"{type(exc).__name__}: {exc}", now)
        return out

    # -- one job -----------------------------------------------------------------------------------------
    def _run_job(self, job: MonitorJobConfig, now: float) -> list[Signal]:
        out: list[Signal] = []
        until_ref = getattr(job.reference, "until", None)
        if until_ref is not None and job.name not in self._references and until_ref > now - job.delay_s:
            # A stored reference range still being written: profiling it now would freeze a partial
            # reference for good. Its windows wait (nothing is skipped) until the range is complete.
            if job.name not in self._waiting:
                log.info("monitor %s: waiting for its reference range to end (at %s)", job.name, until_ref)
                self._waiting.add(job.name)
            return out
        for since, until in self._pending_windows(job, now):
            signals: list[Signal] = []
            try:
                signals = self._check(job, since, until, now)
            except _WindowFailed as exc:
                self._record_error(job, since, until, exc.reason, str(exc), now)
            except Exception as exc:
                self._record_error(job, since, until, "error", f"{type(exc).__name__}: {exc}", now)
            out += signals
            self._last_end[job.name] = until  # a failed window is reported, not retried forever
            if not any(s.name == "window_rows" for s in signals):  # failed or empty: still remember it
                self._mark_done(job, since, until, now)
        return out

    def _pending_windows(self, job: MonitorJobConfig, now: float) -> list[tuple[float, float]]:
        first_run = job.name not in self._last_end
        last = self._stored_last_end(job) if first_run else self._last_end[job.name]
        self._last_end[job.name] = last
        cutoff = now - job.delay_s
        where = RecordFilter(job.model, job.version, last, cutoff)
        if job.window_s is None:
            return self._count_windows(job, where, first_run, now)
        size = job.window_s
        if last is None:
            first = self.store.nth_records(where, 0)
            if not first:
                return []
            last = math.floor(first[0][0] / size) * size
        count = max(0, math.floor((cutoff - last) / size))
        skip = max(0, count - job.catch_up) if first_run else 0
        if skip:
            self._skip(job, last, last + skip * size, skip, now)
            last += skip * size
        return [(last + i * size, last + (i + 1) * size) for i in range(count - skip)]

    def _count_windows(
        self, job: MonitorJobConfig, where: RecordFilter, first_run: bool, now: float
    ) -> list[tuple[float, float]]:
        """Every N records: windows end just after their Nth record. The window edges are found on the
        store's index (the N-th record from the previous edge), never by reading the records."""
        assert not isinstance(job.window, str)
        n = job.window.every
        store = self.store
        total = skip = 0
        if first_run:  # only the newest `catch_up` windows are checked; the edge is counted from the newest
            total = store.indexed_count(where)
            skip = max(0, total // n - job.catch_up)
        if skip:
            start = store.nth_records(where, total - skip * n - 1, newest_first=True)
            skipped_until = math.nextafter(start[0][0], -math.inf) if start else where.until
            assert skipped_until is not None
            self._skip(job, where.since, math.nextafter(skipped_until, math.inf), skip, now)
        else:
            start = store.nth_records(where, 0)
        windows = []
        while start:  # the window's Nth record and the next window's first, from the window's first
            edge = store.nth_records(where, n - 1, start=start[0], limit=2)
            if not edge:
                break
            windows.append((start[0][0], math.nextafter(edge[0][0], math.inf)))
            start = edge[1:]
        return windows

    def _skip(self, job: MonitorJobConfig, since: float | None, until: float, windows: int, now: float) -> None:
        """Past windows beyond `catch_up`: one log line, one `monitor_windows_skipped` signal, and the
        progress marker moved past them (so a restart does not count them again)."""
        log.info(
            "monitor %s: %d past window(s) before %s skipped at start (catch_up=%d)",
            job.name,
            windows,
            until,
            job.catch_up,
        )
        skipped = Signal(
            model=job.model,
            version=job.version or ALL_VERSIONS,
            name="monitor_windows_skipped",
            value=float(windows),
            labels={"monitor": job.name},
            window_start=since,
            window_end=until,
        )
        publish([skipped], store=self.store, metrics=self.metrics, ts=now)
        self._mark_done(job, until if since is None else since, until, now)
        self._last_end[job.name] = until

    def _check(self, job: MonitorJobConfig, since: float, until: float, now: float) -> list[Signal]:
        ref = self._reference(job, now)
        versions = [job.version] if job.version else self._versions(job, since, until)
        out: list[Signal] = []
        for version in versions:
            rows = self.store.count(RecordFilter(job.model, version, since, until))
            if rows < job.min_rows:
                raise _WindowFailed(
                    "too_few_rows",
                    f"{job.model}/{version} has {rows} records in the window, fewer than min_rows={job.min_rows}",
                )
        seen = self._label_fingerprint(job, since, until)
        for version in versions:
            found, failures = self._windows.run(job, ref, version, since, until, job.checks)
            for reason, text in failures:
                self._record_error(job, since, until, reason, text, now)
            signals = [_labelled(s, job.name) for s in found]
            publish(signals, store=self.store, metrics=self.metrics, ts=now)
            out += signals
        if seen is not None:
            marker = relabel.marker(job.name, job.model, job.version or ALL_VERSIONS, since, until, seen)
            self.store.write_signals([marker], now)
        return out

    # -- late labels -------------------------------------------------------------------------------------
    def _label_fingerprint(self, job: MonitorJobConfig, since: float, until: float) -> relabel.Fingerprint | None:
        if not job.label_checks or job.labels_within_s <= 0:
            return None
        return relabel.fingerprint(self.store, job.model, job.version, since, until)

    def _recheck_labels(self, job: MonitorJobConfig, now: float) -> list[Signal]:
        """Run the label checks again on the windows (ended within `labels_within`) whose labels changed."""
        if not job.label_checks or job.labels_within_s <= 0:
            return []
        out: list[Signal] = []
        newest_end = self._last_end.get(job.name)
        horizon = now - job.labels_within_s
        for (since, until), saw in sorted(relabel.checked_windows(self.store, job.model, job.name, horizon).items()):
            seen = relabel.fingerprint(self.store, job.model, job.version, since, until)
            if seen.text() == saw:
                continue
            log.info(
                "monitor %s: labels of window [%s, %s) changed (%s -> %s)", job.name, since, until, saw, seen.text()
            )
            try:
                ref = self._reference(job, now)
            except _WindowFailed as exc:
                self._record_error(job, since, until, exc.reason, str(exc), now)
                return out
            versions = [job.version] if job.version else self._versions(job, since, until)
            for version in versions:
                found, failures = self._windows.run(job, ref, version, since, until, job.label_checks, with_rows=False)
                for reason, text in failures:
                    self._record_error(job, since, until, reason, text, now)
                signals = [_labelled(s, job.name) for s in found]
                # the gauges show the newest window: an older window's new values go to the store only
                latest = newest_end is None or until >= newest_end
                publish(signals, store=self.store, metrics=self.metrics if latest else None, ts=now)
                out += signals
            marker = relabel.marker(job.name, job.model, job.version or ALL_VERSIONS, since, until, seen)
            self.store.write_signals([marker], now)
        return out

    def _versions(self, job: MonitorJobConfig, since: float, until: float) -> list[str]:
        return self.store.versions_between(job.model, since, until)

    def _reference(self, job: MonitorJobConfig, now: float) -> JobReference:
        """The job's reference, loaded once (a stored range is read on the first run); loading it
        writes a `reference_refreshed_at` mark (the file's creation time, or the range's end)."""
        if job.name in self._references:
            return self._references[job.name]
        try:
            ref = load_reference(job, self.store)
        except AisreError as exc:
            raise _WindowFailed("bad_reference", str(exc)) from None
        self._references[job.name] = ref
        from aisre.slo.marks import REFERENCE_REFRESHED_AT, mark

        try:
            signal = mark(self.store, job.model, REFERENCE_REFRESHED_AT, ref.refreshed_at, now=now, version=job.version)
            publish([_labelled(signal, job.name)], metrics=self.metrics)
        except AisreError as exc:  # a store without signals: the checks still run
            log.warning("monitor %s: cannot record reference_refreshed_at: %s", job.name, exc)
        return ref

    # -- progress and errors -----------------------------------------------------------------------------
    def _stored_last_end(self, job: MonitorJobConfig) -> float | None:
        ends = [
            s.window_end
            for _, s in self.store.signals(model=job.model, name="window_rows")
            if s.labels.get("monitor") == job.name and s.window_end is not None
        ]
        return max(ends, default=None)

    def _mark_done(self, job: MonitorJobConfig, since: float, until: float, now: float) -> None:
        """A store-only `window_rows{monitor, scope=job}` marker, so a restart resumes after a window that
        failed or held no version's records (a checked window's own `window_rows` already says so)."""
        marker = Signal(
            model=job.model,
            version=job.version or ALL_VERSIONS,
            name="window_rows",
            value=float(self.store.indexed_count(RecordFilter(job.model, job.version, since, until))),
            labels={"monitor": job.name, "scope": "job"},
            window_start=since,
            window_end=until,
        )
        self.store.write_signals([marker], now)

    def _record_error(
        self, job: MonitorJobConfig, since: float | None, until: float | None, reason: str, text: str, now: float
    ) -> None:
        log.warning("monitor %s: window [%s, %s) not checked (%s): %s", job.name, since, until, reason, text)
        self.last_errors.append(f"{job.name}: window [{since}, {until}) not checked ({reason}): {text}")
        error = Signal(
            model=job.model,
            version=job.version or ALL_VERSIONS,
            name="monitor_job_error",
            value=1.0,
            threshold=0.0,
            breached=True,
            labels={"monitor": job.name, "reason": reason, "error": text[:500]},
            window_start=since,
            window_end=until,
        )
        try:
            self.store.write_signals([error], now)
        except Exception:
            log.exception("monitor %s: cannot store the error signal", job.name)
        if self._errors is not None:
            self._errors.labels(monitor=job.name, reason=reason).inc()


def _labelled(signal: Signal, job: str) -> Signal:
    return dataclasses.replace(signal, labels={**signal.labels, "monitor": job})


def _error_counter(metrics: Any) -> Any:
    if metrics is None:
        return None
    from prometheus_client import Counter

    return Counter(
        "aisre_monitor_job_errors",
        "Monitoring job windows that could not be checked, by job and reason.",
        ["monitor", "reason"],
        registry=metrics.registry,
    )


__all__: Sequence[str] = ["MonitorRunner"]
