"""Freshness marks: when a model was trained or its reference refreshed, stored as signals.

A mark is a `Signal` in the store's `signals` table; the freshness SLI
(`aisre.slo.window_slis.freshness_slices`) reads them. The contract, for every writer:

- name ``model_trained_at`` (the model's training time) or ``reference_refreshed_at`` (the time
  the monitoring reference was loaded or refreshed);
- value = that time as Unix seconds (UTC epoch, float);
- model = the model's name; version = its version, or ``*`` when the mark holds for every
  version (as the monitoring jobs name a job without a version);
- the signal's computed-at time (`write_signals(..., ts)`) = when the mark was recorded. A mark
  counts for freshness from then on: recording today that a model was trained last week does not
  make last week's slices fresher than was known at the time.

Writers: `aisre.Monitor.mark_trained` / `mark_reference_refreshed`, `aisre slo mark`, the gateway
at start-up for in-process scikit-learn models (the config's `trained_at`, else the artifact's
modification time), and the monitoring jobs when they load or refresh a reference.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from aisre.errors import InvalidParameterError, StoreError
from aisre.records import Signal

MODEL_TRAINED_AT = "model_trained_at"
REFERENCE_REFRESHED_AT = "reference_refreshed_at"
MARKS = (MODEL_TRAINED_AT, REFERENCE_REFRESHED_AT)
ALL_VERSIONS = "*"  # the same wildcard as the monitoring jobs' progress markers

Source = Literal["trained", "reference", "any"]


def mark_names(source: Source) -> tuple[str, ...]:
    """The mark names a freshness SLI with this `source` reads."""
    return {"trained": (MODEL_TRAINED_AT,), "reference": (REFERENCE_REFRESHED_AT,)}.get(source, MARKS)


def epoch_seconds(at: Any, what: str = "at") -> float:
    """A Unix time (int/float seconds) or an aware datetime (naive = UTC) -> float seconds."""
    if isinstance(at, dt.datetime):
        return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        raise InvalidParameterError(f"{what}: expected a Unix time in seconds or a datetime, got {at!r}")
    return float(at)


def mark(store: Any, model: str, name: str, at: Any, *, now: float, version: str | None = None) -> Signal:
    """Record that `model` (`version`, default every version) was trained / refreshed at `at`.

    `now` is when the mark is recorded (Unix seconds: pass the clock's time). StoreError when the
    store keeps no signals (a JSONL sink); InvalidParameterError naming a bad name, model or time."""
    if name not in MARKS:
        raise InvalidParameterError(f"mark: expected one of {list(MARKS)}, got {name!r}")
    if not isinstance(model, str) or not model:
        raise InvalidParameterError(f"model: expected a non-empty string, got {model!r}")
    if version is not None and (not isinstance(version, str) or not version):
        raise InvalidParameterError(f"version: expected a non-empty string, got {version!r}")
    value = epoch_seconds(at)
    write = getattr(store, "write_signals", None)
    if write is None:
        raise StoreError(f"{type(store).__name__} keeps no signals: freshness marks need a SQLite store")
    signal = Signal(model, version or ALL_VERSIONS, name, value, labels={"kind": "freshness_mark"})
    write([signal], float(now))
    return signal
