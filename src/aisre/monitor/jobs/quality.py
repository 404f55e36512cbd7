"""The label and output checks of a window: realised performance, fairness, LLM output quality.

Each function reads one window of one model version from the store, calls the statistics
layer once (`aisre.monitor.performance.performance`, `aisre.monitor.fairness.fairness`,
`aisre.monitor.llm.llm_quality`) and returns that report's own signals. A metric that is
undefined for the window (NaN: recall with no positive label, a label-based fairness gap with
no labels) is left out rather than published: NaN can be neither good nor bad in an SLO.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aisre.config.monitor_checks import FairnessOptions, LLMQualityOptions, PerformanceOptions
from aisre.errors import DataError
from aisre.monitor.jobs.checks import LLM_OPERATIONS
from aisre.monitor.jobs.reference import JobReference
from aisre.monitor.tabular.labeled import LabeledWindow, from_records
from aisre.records import InferenceRecord, Label, Signal
from aisre.store.base import RecordFilter


def _finite(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.value is not None and math.isfinite(s.value)]


# -- realised performance ------------------------------------------------------------------------
def _report(window: LabeledWindow, opts: PerformanceOptions, thresholds: dict[str, float], n_bootstrap: int) -> Any:
    from aisre.monitor.performance import performance

    task = opts.resolved_task
    kwargs: dict[str, Any] = {"metrics": opts.metrics, "thresholds": thresholds, "n_bootstrap": n_bootstrap}
    if opts.pos_label is not None and "pos_label" in inspect.signature(performance).parameters:
        kwargs["pos_label"] = opts.pos_label
    score = None if task == "regression" else window.y_score
    if score is not None:
        kwargs["classes"] = window.classes
    has_pred = any(v is not None for v in window.y_pred.tolist()) or score is None
    return performance(window.y_true, window.y_pred if has_pred else None, score, task, **kwargs)  # type: ignore[arg-type]


def labelled_reference(store: Any, reference: JobReference) -> LabeledWindow:
    """The reference range's labelled records as arrays (empty for a reference file)."""
    labels = store.labels_for([r.id for r in reference.records])
    return from_records([(r, labels[r.id]) for r in reference.records if r.id in labels])


def performance_band(store: Any, opts: PerformanceOptions, reference: JobReference, chunk: int) -> dict[str, float]:
    """Per metric without a constant bound: the floor (higher is better) or ceiling of mean ± k·std of the
    metric over the labelled reference cut into `chunk`-row chunks (NannyML's realised-performance band)."""
    from aisre.monitor.drift.thresholds import StdThreshold, chunk_slices
    from aisre.monitor.performance import metrics as pm

    assert opts.threshold is not None
    key = f"performance_band:{chunk}"
    if key in reference.cache:
        return dict(reference.cache[key])
    ref = labelled_reference(store, reference)
    if not len(ref):
        raise DataError("performance.threshold: the reference range has no labelled records to draw a band from")
    slices = chunk_slices(len(ref), chunk)
    wanted = [m for m in opts.metrics if m not in opts.min and m not in opts.max]
    values: dict[str, list[float]] = {m: [] for m in wanted}
    for part in slices:
        report = _report(ref.select(np.arange(len(ref))[part]), opts, {}, n_bootstrap=1)
        for m in wanted:
            values[m].append(report.metrics[m].value)
    band = {}
    rule = StdThreshold(opts.threshold.std, lower_k=opts.threshold.std)
    for m in wanted:
        lower, upper = rule.bounds(np.array(values[m]))
        bound = lower if m in pm.HIGHER_IS_BETTER else upper
        if bound is not None:
            band[m] = float(bound)
    reference.cache[key] = band
    return dict(band)


def performance_signals(
    pairs: Sequence[tuple[InferenceRecord, Label | None]],
    opts: PerformanceOptions,
    band: dict[str, float],
    scope: dict[str, Any],
) -> list[Signal]:
    """`<metric>{metric, task}` (accuracy, recall, mae...) from the window's labelled records; nothing
    below `min_labels` labelled rows."""
    labelled = [(r, lab) for r, lab in pairs if lab is not None]
    if len(labelled) < opts.min_labels:
        return []
    thresholds = {**band, **opts.min, **opts.max}
    # signals carry the point value, not the interval: one bootstrap draw keeps f1/mae cheap
    report = _report(from_records(labelled), opts, thresholds, n_bootstrap=1)
    return _finite(report.signals(**scope))


# -- fairness ------------------------------------------------------------------------------------
def _field(records: Sequence[InferenceRecord], name: str) -> np.ndarray:
    """A sensitive field per record: from `inputs` (a mapping), else from `tags`."""
    out = np.empty(len(records), dtype=object)
    seen = False
    for i, r in enumerate(records):
        if isinstance(r.inputs, dict) and name in r.inputs:
            out[i], seen = r.inputs[name], True
        elif name in (r.tags or {}):
            out[i], seen = r.tags[name], True
        else:
            out[i] = None
    if not seen:
        raise DataError(f"fairness: no record in the window has the sensitive field {name!r} in its inputs or tags")
    return out


def fairness_signals(
    pairs: Sequence[tuple[InferenceRecord, Label | None]], opts: FairnessOptions, scope: dict[str, Any]
) -> list[Signal]:
    """The chosen `fairness` gaps/ratios {sensitive_feature, metric}; labels used where present."""
    from aisre.monitor.fairness import fairness

    if len(pairs) < opts.min_rows:
        return []
    records = [r for r, _ in pairs]
    truth = [None if lab is None else lab.value for _, lab in pairs]
    columns = {name: _field(records, name) for name in opts.sensitive}
    sensitive: Any = columns[opts.sensitive[0]] if len(columns) == 1 else columns
    report = fairness(
        truth if any(t is not None for t in truth) else None,
        [r.prediction for r in records],
        sensitive,
        pos_label=opts.pos_label,
        method=opts.method,
        thresholds=opts.thresholds,
        sensitive_name=",".join(opts.sensitive),
    )
    return _finite([s for s in report.signals(**scope) if s.name in opts.metrics])


# -- LLM output quality ----------------------------------------------------------------------------
def is_llm(record: InferenceRecord) -> bool:
    return record.operation in LLM_OPERATIONS or record.output_text is not None


def llm_quality_signals(
    records: Sequence[InferenceRecord], opts: LLMQualityOptions, reference: JobReference, scope: dict[str, Any]
) -> list[Signal]:
    """`llm_<kind>_rate` (breached above `max`), and `llm_response_length_drift` against a stored reference."""
    from aisre.monitor.llm import llm_quality

    llm = [r for r in records if is_llm(r)]
    if not llm:
        raise DataError("llm_quality: no LLM response (chat/completion record or output text) in the window")
    options: dict[str, Any] = {"expect_json": opts.expect_json, "schema": opts.json_schema, "max_rates": opts.max}
    if opts.max_tokens is not None:
        options["max_tokens"] = opts.max_tokens
    if "llm_reference" not in reference.cache:
        ref_llm = [r for r in reference.records if is_llm(r)]
        reference.cache["llm_reference"] = llm_quality(ref_llm) if ref_llm else None
    report = llm_quality(llm, reference=reference.cache["llm_reference"], **options)
    return _finite(report.signals(**scope))


def window_pairs(store: Any, model: str, version: str, since: float, until: float) -> list[tuple[Any, Any]]:
    """(record, label or None) of one window, in time order."""
    return store.labeled_records(RecordFilter(model, version, since, until), only_labeled=False)
