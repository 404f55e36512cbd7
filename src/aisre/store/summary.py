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
    cancelled: int = 0  # calls whose client left first: in `count`, not in `errors`

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def summarize(store: SQLiteStore, where: RecordFilter = RecordFilter()) -> list[LogSummary]:
    groups: dict[tuple[str, str], tuple[list[float], list[int], list[float]]] = {}
    for model, version, status, latency, cost in store.latency_rows(where):
        latencies, counts, costs = groups.setdefault((model, version), ([], [0, 0, 0], [0.0]))
        counts[0] += 1
        counts[1] += status == "error"
        counts[2] += status == "cancelled"
        if latency is not None:
            latencies.append(latency)
        if cost:
            costs[0] += cost
    out = []
    for (model, version), (latencies, (count, errors, cancelled), (cost,)) in sorted(groups.items()):
        if latencies:
            p50, p95, p99 = np.percentile(np.asarray(latencies), [50, 95, 99]).tolist()
        else:
            p50 = p95 = p99 = float("nan")
        out.append(LogSummary(model, version, count, errors, p50, p95, p99, cost, cancelled))
    return out


@dataclass(frozen=True, slots=True)
class KeySummary:
    """One API key's traffic (`key_id` None: calls made without a key). Cost in US dollars."""

    key_id: str | None
    models: tuple[str, ...]
    count: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def summarize_by_key(store: SQLiteStore, where: RecordFilter = RecordFilter()) -> list[KeySummary]:
    """Per key id: calls, errors, tokens in/out and cost; the biggest spender first."""
    groups: dict[str | None, tuple[set[str], list[int], list[float]]] = {}
    for key_id, model, status, cost, tokens_in, tokens_out in store.key_rows(where):
        models, counts, costs = groups.setdefault(key_id, (set(), [0, 0, 0, 0], [0.0]))
        models.add(model)
        counts[0] += 1
        counts[1] += status == "error"
        counts[2] += tokens_in or 0
        counts[3] += tokens_out or 0
        if cost:
            costs[0] += cost
    out = [
        KeySummary(key_id, tuple(sorted(models)), count, errors, tokens_in, tokens_out, cost)
        for key_id, (models, (count, errors, tokens_in, tokens_out), (cost,)) in groups.items()
    ]
    out.sort(key=lambda s: (-s.cost_usd, s.key_id is None, s.key_id or ""))
    return out
