"""Checks on a window of stored records: inputs and outputs as columns, drift as signals.

This is where the store (filled by the SDK or the gateway) meets the statistics: a window
`[since, until)` of one model version's records becomes named columns (the inputs, and
the outputs: prediction, each class score, response length, output tokens), is compared
with a reference, and every result becomes a `Signal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aisre.errors import InvalidParameterError
from aisre.monitor.jobs.columns import inputs_to_columns, outputs_to_columns, read_window
from aisre.monitor.tabular.frame import Columns, DataError, to_columns
from aisre.records import InferenceRecord, Signal
from aisre.records.signal import SignalScope
from aisre.store.base import RecordFilter, Store

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


def input_columns(records: Sequence[InferenceRecord]) -> Columns:
    """Each record's `inputs` mapping as one row; non-mapping inputs are not tabular."""
    return inputs_to_columns([r.inputs for r in records])


def output_columns(records: Sequence[InferenceRecord]) -> Columns:
    """Model outputs as columns: `prediction`, `score:<class>`, `response_length`, `output_tokens`."""
    return outputs_to_columns(
        [r.prediction for r in records],
        [r.scores for r in records],
        [r.output_text for r in records],
        [r.output_tokens for r in records],
    )


@dataclass
class WindowCheck:
    """The drift of one window's inputs and outputs against the reference, and its signals.

    `rows == 0` (`no_data`) means nothing was checked: an empty window is not a healthy one.
    `missing_inputs`/`missing_outputs` name reference columns the stored records do not have
    at all; each also becomes a breached `data_column_missing{feature}` /
    `prediction_column_missing{output}` signal, because a feature that stops arriving is news.
    """

    model: str
    version: str
    since: float | None
    until: float | None
    rows: int
    data: Any = None
    prediction: Any = None
    signals: list[Signal] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)
    missing_outputs: list[str] = field(default_factory=list)

    @property
    def no_data(self) -> bool:
        return self.rows == 0


def check_window(
    store: Store,
    reference_inputs: Any,
    model: str,
    version: str,
    since: float | None = None,
    until: float | None = None,
    *,
    reference_outputs: Any = None,
    method: str | dict[str, str] = "auto",
    share_threshold: float = 0.5,
    **drift_options: Any,
) -> WindowCheck:
    """Compare a stored window with reference data (anything `to_columns` accepts).

    Signals: `data_drift_score{feature,method}` and `prediction_drift_score{output,method}`
    (the value the verdict compares with the threshold: the p-value for tests, the distance
    for distances), `data_drift_share` and `dataset_drift` (0/1, breached when 1), `window_rows`, and
    `data_column_missing{feature}` / `prediction_column_missing{output}` (1, breached) for each
    reference column the records lack. `until` must be after `since` (InvalidParameterError).
    """
    from aisre.monitor.drift import drift  # the statistics layer; imported lazily (numpy/scipy)

    if since is not None and until is not None and not until > since:
        raise InvalidParameterError(
            f"until: expected a time after since (an empty window checks nothing), got since={since}, until={until}"
        )
    # read once, as columns (no InferenceRecord objects: they cost more than the drift)
    window = read_window(store, RecordFilter(model, version, since, until))
    check = WindowCheck(model, version, since, until, window.rows)
    base = SignalScope(model=model, version=version, window_start=since, window_end=until)
    check.signals.append(Signal(name="window_rows", value=float(window.rows), **base))
    if not window.rows:
        return check
    current = window.inputs
    reference = to_columns(reference_inputs)
    shared = [c for c in reference if c in current]
    check.missing_inputs = [c for c in reference if c not in current]
    if reference and not shared:
        raise DataError(
            f"no reference column appears in the stored inputs of {model}/{version}: "
            f"reference has {sorted(reference)[:10]}, records have {sorted(current)[:10]}"
        )
    options = {"method": method, "share_threshold": share_threshold, **drift_options}  # inputs and outputs alike
    if shared:
        result = drift({c: reference[c] for c in shared}, {c: current[c] for c in shared}, **options)
        check.data = result
        check.signals += _drift_signals(result, "data_drift_score", "feature", base)
        check.signals.append(
            Signal(
                name="data_drift_share",
                value=result.share_drifted,
                threshold=share_threshold,
                breached=result.dataset_drift,
                **base,
            )
        )
        # breached as well as 1: the drift SLI (aisre.slo.events) reads the verdict, not the value
        check.signals.append(
            Signal(name="dataset_drift", value=float(result.dataset_drift), breached=result.dataset_drift, **base)
        )
    check.signals += _missing_signals(check.missing_inputs, "data_column_missing", "feature", base)
    if reference_outputs is not None:
        ref_out, cur_out = to_columns(reference_outputs), window.outputs
        both = [c for c in ref_out if c in cur_out]
        check.missing_outputs = [c for c in ref_out if c not in cur_out]
        check.signals += _missing_signals(check.missing_outputs, "prediction_column_missing", "output", base)
        if both:
            result = drift({c: ref_out[c] for c in both}, {c: cur_out[c] for c in both}, **options)
            check.prediction = result
            check.signals += _drift_signals(result, "prediction_drift_score", "output", base)
    return check


def _missing_signals(columns: list[str], name: str, label: str, base: SignalScope) -> list[Signal]:
    return [Signal(name=name, value=1.0, threshold=0.0, breached=True, labels={label: c}, **base) for c in columns]


def _drift_signals(result: Any, name: str, label: str, base: SignalScope) -> list[Signal]:
    out = []
    for column, r in result.columns.items():
        value = r.p_value if r.p_value is not None else r.statistic
        out.append(
            Signal(
                name=name,
                value=float(value),
                threshold=r.threshold,
                breached=r.drift,
                labels={label: column, "method": r.method},
                **base,
            )
        )
    return out
