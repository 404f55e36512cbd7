"""Signals as Prometheus gauges: `aisre_<name>{model, version, <labels>}` holds the latest
value of each series, `aisre_<name>_breached` is 1 when past its threshold.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from aisre.records import Signal


class SignalExporter:
    """Holds the latest value of every signal series and exposes them as Prometheus gauges."""

    def __init__(self) -> None:
        self._latest: dict[tuple, Signal] = {}
        self._lock = threading.Lock()

    def update(self, signals: Iterable[Signal]) -> None:
        with self._lock:
            for s in signals:
                key = (s.name, s.model, s.version, tuple(sorted(s.labels.items())))
                self._latest[key] = s

    def describe(self) -> list:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            latest = list(self._latest.values())
        by_name: dict[str, list[Signal]] = {}
        for s in latest:
            by_name.setdefault(s.name, []).append(s)
        for name, series in sorted(by_name.items()):
            label_names = sorted({k for s in series for k in s.labels})
            names = ["model", "version", *label_names]
            value = GaugeMetricFamily(f"aisre_{name}", f"Latest aisre signal {name}.", labels=names)
            breached = GaugeMetricFamily(f"aisre_{name}_breached", f"1 if {name} is past its threshold.", labels=names)
            for s in series:
                values = [s.model, s.version, *(s.labels.get(k, "") for k in label_names)]
                value.add_metric(values, s.value if math.isfinite(s.value) else math.nan)
                breached.add_metric(values, 1.0 if s.breached else 0.0)
            yield value
            yield breached
