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
from aisre.monitor.jobs.checks import check_window, input_columns, output_columns
from aisre.monitor.jobs.estimated import FittedReference, estimate_signals, fit_reference
from aisre.monitor.jobs.signals import publish
from aisre.records import Signal
from aisre.store.base import RecordFilter

log = logging.getLogger("aisre.monitor.jobs")
#: Output columns of `output_columns`: a saved Reference's columns with these names are outputs.
_OUTPUT_NAMES = frozenset({"prediction", "response_length", "output_tokens"})
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
        self._references: dict[str, tuple[Any, Any]] = {}
        self._fitted: dict[str, FittedReference] = {}
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
            except Exception as exc:  # one broken job never stops the others, nor the schedule
                self._record_error(job, None, None, "error", f"{type(exc).__name__}: {exc}", now)
        return out

    # -- one job -----------------------------------------------------------------------------------------
    def _run_job(self, job: MonitorJobConfig, now: float) -> list[Signal]:
        out: list[Signal] = []
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
        last = self._last_end[job.name] if job.name in self._last_end else self._stored_last_end(job)
        self._last_end[job.name] = last
        cutoff = now - job.delay_s
        where = RecordFilter(job.model, job.version, last, cutoff)
        if job.window_s is None:  # every N records: windows end just after their Nth record
            assert not isinstance(job.window, str)
            n = job.window.every
            stamps = [r.ts for r in self.store.records(where)]
            chunks = [stamps[i : i + n] for i in range(0, len(stamps) - n + 1, n)]
            return [(c[0], math.nextafter(c[-1], math.inf)) for c in chunks]
        size = job.window_s
        if last is None:
            first = self.store.records(where, limit=1)
            if not first:
                return []
            last = math.floor(first[0].ts / size) * size
        windows = []
        start = last
        while start + size <= cutoff:
            windows.append((start, start + size))
            start += size
        return windows

    def _check(self, job: MonitorJobConfig, since: float, until: float, now: float) -> list[Signal]:
        ref_in, ref_out = self._reference(job)
        fitted = self._fitted_reference(job) if "estimated_performance" in job.checks else None
        versions = [job.version] if job.version else self._versions(job, since, until)
        options: dict[str, Any] = {"share_threshold": job.share_threshold}
        if job.threshold is not None:
            options["threshold"] = job.threshold
        out: list[Signal] = []
        for version in versions:
            rows = self.store.count(RecordFilter(job.model, version, since, until))
            if rows < job.min_rows:
                raise _WindowFailed(
                    "too_few_rows",
                    f"{job.model}/{version} has {rows} records in the window, fewer than min_rows={job.min_rows}",
                )
            check = check_window(
                self.store,
                ref_in if "data_drift" in job.checks else {},
                job.model,
                version,
                since,
                until,
                reference_outputs=ref_out if "prediction_drift" in job.checks else None,
                method=job.method,
                **options,
            )
            found = check.signals
            if fitted is not None:
                window = self.store.records(RecordFilter(job.model, version, since, until))
                found = found + estimate_signals(fitted, window, job.model, version, since, until, job.min)
            signals = [_labelled(s, job.name) for s in found]
            publish(signals, store=self.store, metrics=self.metrics, ts=now)
            out += signals
        return out

    def _versions(self, job: MonitorJobConfig, since: float, until: float) -> list[str]:
        return sorted({r.version for r in self.store.records(RecordFilter(job.model, None, since, until))})

    def _reference(self, job: MonitorJobConfig) -> tuple[Any, Any]:
        """(inputs, outputs) as columns; loaded once (a stored range is profiled on the first run)."""
        if job.name in self._references:
            return self._references[job.name]
        if isinstance(job.reference, str):
            from aisre.monitor.profiles.reference import Reference

            try:
                samples = Reference.load(job.reference).samples
            except Exception as exc:
                raise _WindowFailed("bad_reference", f"cannot load reference {job.reference}: {exc}") from None
            ref_in = {c: v for c, v in samples.items() if not _is_output(c)}
            ref_out = {c: v for c, v in samples.items() if _is_output(c)}
        else:
            r = job.reference
            records = self.store.records(RecordFilter(job.model, job.version, r.since, r.until))
            if not records:
                raise _WindowFailed(
                    "bad_reference",
                    f"reference range [{r.since}, {r.until}) holds no records of {job.model}/{job.version or '*'}",
                )
            ref_in, ref_out = input_columns(records), output_columns(records)
        self._references[job.name] = (ref_in, ref_out)
        return ref_in, ref_out

    def _fitted_reference(self, job: MonitorJobConfig) -> FittedReference:
        """CBPE fitted once on the job's labelled reference range (config refuses a reference file)."""
        if job.name not in self._fitted:
            r = job.reference
            assert not isinstance(r, str)
            try:
                self._fitted[job.name] = fit_reference(
                    self.store, job.model, job.version, r.since, r.until, job.estimated_metric
                )
            except AisreError as exc:
                raise _WindowFailed("bad_reference", f"estimated_performance: {exc}") from None
        return self._fitted[job.name]

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
            value=float(self.store.count(RecordFilter(job.model, job.version, since, until))),
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


def _is_output(column: str) -> bool:
    return column in _OUTPUT_NAMES or column.startswith("score:")


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
