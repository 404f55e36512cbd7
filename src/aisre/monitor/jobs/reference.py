"""A job's reference, loaded once: columns for drift, records for the label checks, and when it was made.

A saved `Reference` file gives sampled columns (inputs, and outputs named as `output_columns`
names them) and the time it was created (its `settings["created"]`, else the file's mtime). A
stored range `[since, until)` gives the model's own records: their columns, their labels (for
CBPE, realised-performance bands and importance), and its end as the time it describes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from aisre.config.monitors import MonitorJobConfig
from aisre.errors import DataError
from aisre.monitor.jobs.checks import input_columns, output_columns
from aisre.records import InferenceRecord
from aisre.store.base import RecordFilter

#: Output columns of `output_columns`: a saved Reference's columns with these names are outputs.
OUTPUT_NAMES = frozenset({"prediction", "response_length", "output_tokens"})


def is_output(column: str) -> bool:
    return column in OUTPUT_NAMES or column.startswith("score:")


@dataclass
class JobReference:
    """What a job compares with. `records` is empty for a file; `refreshed_at` is epoch seconds;
    `rows_per_window` is the reference's mean row count per window duration (stored ranges and
    time windows only), the chunk size of thresholds drawn from the reference's variability."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    refreshed_at: float
    records: list[InferenceRecord] = field(default_factory=list)
    rows_per_window: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # per-check derived state (fitted proxies, bands)

    @property
    def columns(self) -> dict[str, Any]:
        return {**self.inputs, **self.outputs}


def load_reference(job: MonitorJobConfig, store: Any) -> JobReference:
    """The job's reference; DataError (with the reason) when it cannot be read or holds nothing."""
    if isinstance(job.reference, str):
        from aisre.monitor.profiles.reference import Reference

        try:
            saved = Reference.load(job.reference)
        except Exception as exc:
            raise DataError(f"cannot load reference {job.reference}: {exc}") from None
        created = saved.settings.get("created") if isinstance(saved.settings, dict) else None
        refreshed = float(created) if isinstance(created, int | float) else os.path.getmtime(job.reference)
        samples = saved.samples
        return JobReference(
            {c: v for c, v in samples.items() if not is_output(c)},
            {c: v for c, v in samples.items() if is_output(c)},
            refreshed,
        )
    r = job.reference
    records = store.records(RecordFilter(job.model, job.version, r.since, r.until))
    if not records:
        raise DataError(f"reference range [{r.since}, {r.until}) holds no records of {job.model}/{job.version or '*'}")
    per_window = None
    if job.window_s is not None:
        per_window = max(1, round(len(records) * job.window_s / (r.until - r.since)))
    return JobReference(input_columns(records), output_columns(records), r.until, records, per_window)


def chunk_size(job: MonitorJobConfig, reference: JobReference, window_rows: int) -> int:
    """Rows per reference chunk for a threshold from the reference's variability (see MonitorJobConfig)."""
    if job.chunk_size is not None:
        return job.chunk_size
    if job.window_s is None:
        assert not isinstance(job.window, str)
        return job.window.every
    return reference.rows_per_window or window_rows
