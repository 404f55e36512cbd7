"""A job's reference, loaded once: columns for drift, records for the label checks, and when it was made.

A saved `Reference` file gives sampled columns (inputs, and outputs named as `output_columns`
names them) and the time it was created (its `settings["created"]`, else the file's mtime). A
stored range `[since, until)` gives the model's own records: their columns, their labels (for
CBPE, realised-performance bands and importance), and its end as the time it describes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aisre.config.monitors import MonitorJobConfig
from aisre.errors import DataError
from aisre.monitor.jobs.columns import read_window
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
    time windows only), the chunk size of thresholds drawn from the reference's variability.
    `read_records` reads a stored range's records: only the label checks need them, so they are
    read the first time `records` is asked for (the drift checks use the columns)."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    refreshed_at: float
    rows_per_window: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # per-check derived state (fitted proxies, bands)
    read_records: Callable[[], list[InferenceRecord]] | None = field(default=None, repr=False)

    @property
    def records(self) -> list[InferenceRecord]:
        if "records" not in self.cache:
            self.cache["records"] = self.read_records() if self.read_records is not None else []
        return self.cache["records"]

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
    where = RecordFilter(job.model, job.version, r.since, r.until)
    window = read_window(store, where)
    if not window.rows:
        raise DataError(f"reference range [{r.since}, {r.until}) holds no records of {job.model}/{job.version or '*'}")
    per_window = None
    if job.window_s is not None:
        per_window = max(1, round(window.rows * job.window_s / (r.until - r.since)))
    return JobReference(window.inputs, window.outputs, r.until, per_window, read_records=lambda: _records(store, where))


def _records(store: Any, where: RecordFilter) -> list[InferenceRecord]:
    read = getattr(store, "indexed_records", store.records)  # index ranges per version when the store has them
    return read(where)


def chunk_size(job: MonitorJobConfig, reference: JobReference, window_rows: int) -> int:
    """Rows per reference chunk for a threshold from the reference's variability (see MonitorJobConfig)."""
    if job.chunk_size is not None:
        return job.chunk_size
    if job.window_s is None:
        assert not isinstance(job.window, str)
        return job.window.every
    return reference.rows_per_window or window_rows
