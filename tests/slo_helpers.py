"""Traffic for the SLO evaluator tests: real records in a real SQLite store, written through aisre.Monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aisre
from aisre.clock import ManualClock

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MINUTE = 60.0
HOUR = 3600.0

SLOS_YAML = """
store: sqlite:///{db}
slos:
  - name: fraud-availability
    model: fraud
    objective: 0.999
    sli: {{kind: availability}}
  - name: fraud-latency
    model: fraud
    objective: 0.999
    sli: {{kind: latency, threshold_s: 0.2}}
  - name: fraud-correctness
    model: fraud
    objective: 0.99
    sli: {{kind: correctness}}
"""


def fraud_traffic(
    db: Path, hours_right: int, hours_wrong: int, per_minute: int = 10, tags: dict[str, str] | None = None
) -> float:
    """Every request succeeds in 50 ms; predictions are right for `hours_right`, then wrong for
    `hours_wrong`, and every label arrives. Returns the end time (a minute edge)."""
    clock = ManualClock(T0)
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db}", clock=clock) as monitor:
        labels: list[tuple[str, Any]] = []
        for minute in range((hours_right + hours_wrong) * 60):
            wrong = minute >= hours_right * 60
            for i in range(per_minute):
                ts = T0 + minute * MINUTE + i * (MINUTE / per_minute)
                truth = i % 2
                prediction = 1 - truth if wrong else truth
                rid = monitor.record({"amount": i}, prediction, latency_s=0.05, ts=ts, tags=tags)
                labels.append((rid, truth))
        monitor.flush()
        monitor.label_many(labels, ts=T0 + (hours_right + hours_wrong) * HOUR)
        monitor.flush()
    return T0 + (hours_right + hours_wrong) * HOUR
