"""Publishing signals: into the store's `signals` table and onto Prometheus gauges."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from aisre.records import Signal
from aisre.telemetry.signals import SignalExporter


def publish(
    signals: Iterable[Signal],
    *,
    store: Any = None,
    exporter: SignalExporter | None = None,
    metrics: Any = None,
    ts: float | None = None,
) -> list[Signal]:
    """Store signals (if a store is given) and expose them as gauges (an exporter, or a Metrics's)."""
    batch = list(signals)
    if store is not None and batch:
        store.write_signals(batch, time.time() if ts is None else ts)
    if exporter is not None:
        exporter.update(batch)
    if metrics is not None:  # a Recorder's Metrics: the gauges appear on its /metrics
        metrics.signals.update(batch)
    return batch
