"""One window of one model version through a job's checks: the records read once, each check run on its own.

The drift checks (`check_window`) decide whether the window can be checked at all (their
failure fails the window, as before); every other check fails alone: its error is returned
beside the signals of the checks that worked, so a broken importance proxy never hides a
drifted window. Threshold objects for `aisre.drift` and CBPE are built here from the job's
config (`std`, `{std: k}`, `{lower, upper}`), with the chunk size of `reference.chunk_size`.
"""

from __future__ import annotations

from typing import Any

from aisre.config.monitor_checks import ConstantBand, StdBand
from aisre.config.monitors import MonitorJobConfig
from aisre.errors import AisreError, DataError
from aisre.monitor.jobs import quality
from aisre.monitor.jobs.checks import check_window
from aisre.monitor.jobs.estimated import FittedReference, estimate_signals, fit_reference
from aisre.monitor.jobs.importance import importance_signals, reference_importance
from aisre.monitor.jobs.reference import JobReference, chunk_size
from aisre.records import Signal
from aisre.store.base import RecordFilter

DRIFT_CHECKS = ("data_drift", "prediction_drift")


class _ReferenceFailed(DataError):
    """What a check derives from the reference (CBPE, a band, a proxy) could not be built: `bad_reference`."""


def _from_reference(build: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return build(*args, **kwargs)
    except AisreError as exc:
        raise _ReferenceFailed(str(exc)) from None


def drift_options(job: MonitorJobConfig, reference: JobReference, rows: int) -> dict[str, Any]:
    """The keyword arguments `check_window` passes to `aisre.drift` for this job."""
    from aisre.monitor.drift.thresholds import ConstantThreshold, StdThreshold

    options: dict[str, Any] = {"share_threshold": job.share_threshold}
    t = job.threshold
    if isinstance(t, StdBand):
        options["threshold"] = StdThreshold(t.std)
        options["chunk_size"] = chunk_size(job, reference, rows)
    elif isinstance(t, ConstantBand):
        options["threshold"] = ConstantThreshold(t.lower, t.upper)
    elif t is not None:
        options["threshold"] = t
    return options


class WindowChecks:
    """Runs checks on `[since, until)` of one version against a loaded `JobReference`."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def run(
        self,
        job: MonitorJobConfig,
        reference: JobReference,
        version: str,
        since: float,
        until: float,
        checks: list[str],
        with_rows: bool = True,
    ) -> tuple[list[Signal], list[tuple[str, str]]]:
        """(signals, [(reason, why a check failed)]); reason is `bad_reference` when what the check
        needs from the reference could not be built, else `<check>_failed`. `with_rows`: include the
        `window_rows` signal (the progress marker of a first check; a label re-check leaves it out)."""
        scope: dict[str, Any] = {"model": job.model, "version": version, "window_start": since, "window_end": until}
        where = RecordFilter(job.model, version, since, until)
        out: list[Signal] = []
        drift = None
        if any(c in checks for c in DRIFT_CHECKS):
            rows = self.store.count(where)
            check = check_window(
                self.store,
                reference.inputs if "data_drift" in checks else {},
                job.model,
                version,
                since,
                until,
                reference_outputs=reference.outputs if "prediction_drift" in checks else None,
                method=job.method,
                **drift_options(job, reference, rows),
            )
            out += check.signals if with_rows else [s for s in check.signals if s.name != "window_rows"]
            drift = check.data
        elif with_rows:
            out.append(Signal(name="window_rows", value=float(self.store.count(where)), **scope))
        others = [c for c in checks if c not in DRIFT_CHECKS]
        if not others:
            return out, []
        pairs = quality.window_pairs(self.store, job.model, version, since, until)
        records = [r for r, _ in pairs]
        failures: list[tuple[str, str]] = []
        for name in others:
            try:
                out += self._one(name, job, reference, pairs, records, drift, scope)
            except _ReferenceFailed as exc:
                failures.append(("bad_reference", f"{name}: {exc}"))
            except Exception as exc:  # one check's failure is recorded; the others stand
                text = str(exc) if isinstance(exc, AisreError) else f"{type(exc).__name__}: {exc}"
                failures.append((f"{name}_failed", f"{name}: {text}"))
        return out, failures

    def _one(
        self,
        name: str,
        job: MonitorJobConfig,
        reference: JobReference,
        pairs: list[Any],
        records: list[Any],
        drift: Any,
        scope: dict[str, Any],
    ) -> list[Signal]:
        if name == "performance":
            opts = job.performance_options
            band = {}
            if opts.threshold is not None:
                chunk = chunk_size(job, reference, len(pairs))
                band = _from_reference(quality.performance_band, self.store, opts, reference, chunk)
            return quality.performance_signals(pairs, opts, band, scope)
        if name == "fairness":
            assert job.fairness is not None
            return quality.fairness_signals(pairs, job.fairness, scope)
        if name == "llm_quality":
            return quality.llm_quality_signals(records, job.llm_quality_options, reference, scope)
        if name == "importance":
            _from_reference(reference_importance, job.importance_options, reference)  # cached on the reference
            return importance_signals(records, job.importance_options, reference, drift, scope)
        if name == "shadow":  # the window's shadow answers of this version paired with the primaries' answers
            from aisre.respond.shadow import shadow_report

            report = shadow_report(
                self.store, job.model, scope["version"], since=scope["window_start"], until=scope["window_end"]
            )
            return report.signals(scope["window_start"], scope["window_end"])
        if name == "estimated_performance":
            fitted = self._fitted(job, reference, len(records))
            est = job.estimated
            return estimate_signals(
                fitted, records, job.model, scope["version"], scope["window_start"], scope["window_end"], est.min
            )
        raise AssertionError(f"unknown check {name!r}")  # the config refuses it

    def _fitted(self, job: MonitorJobConfig, reference: JobReference, rows: int) -> FittedReference:
        """CBPE fitted once on the labelled reference range (with a std band: chunks of a window's size)."""
        est = job.estimated
        band = {}
        if est.threshold is not None:
            band = {"threshold_std": est.threshold.std, "chunk_size": chunk_size(job, reference, rows)}
        key = f"cbpe:{band.get('chunk_size')}"
        if key not in reference.cache:
            r = job.reference
            assert not isinstance(r, str)  # the config refuses a file reference for this check
            reference.cache[key] = _from_reference(
                fit_reference, self.store, job.model, job.version, r.since, r.until, est.metric, **band
            )
        return reference.cache[key]
