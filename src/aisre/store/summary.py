"""Per model/version summaries of the inference log (what `aisre log stats` shows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aisre.store.base import RecordFilter
from aisre.store.sqlite import SQLiteStore


@dataclass(frozen=True, slots=True)
class LogSummary:
    """One model version's traffic. Latencies in seconds; NaN when nothing was timed."""

    model: str
    version: str
    count: int
    errors: int
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    cost_usd: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def summarize(store: SQLiteStore, where: RecordFilter = RecordFilter()) -> list[LogSummary]:
    groups: dict[tuple[str, str], tuple[list[float], list[int], list[float]]] = {}
    for model, version, status, latency, cost in store.latency_rows(where):
        latencies, errors, costs = groups.setdefault((model, version), ([], [0, 0], [0.0]))
        errors[0] += 1
        errors[1] += status != "ok"
        if latency is not None:
            latencies.append(latency)
        if cost:
            costs[0] += cost
    out = []
    for (model, version), (latencies, (count, errors), (cost,)) in sorted(groups.items()):
        if latencies:
            p50, p95, p99 = np.percentile(np.asarray(latencies), [50, 95, 99]).tolist()
        else:
            p50 = p95 = p99 = float("nan")
        out.append(LogSummary(model, version, count, errors, p50, p95, p99, cost))
    return out
