"""The embedded SLO evaluator reading raw records: how long `evaluate()` takes per SLO over 30 days.

    .venv/bin/python bench/slo_embedded.py [--records 1000000] [--days 30] [--repeat 3] [--db PATH]

Writes (numpy, seeded) `--records` fraud predictions spread uniformly over `--days` days into a
fresh SQLite store (0.1% errors, log-normal latency, a label on every record, a `use_case` tag on
one in ten), then times `evaluate()` at the end of the period for five SLOs, one at a time (best of
`--repeat`): availability, latency under 200 ms and correctness by events (SQL GROUP BY minute),
p99 latency per 5-minute slice and hourly accuracy on the tagged records (timeslices, per-slice
work in Python). This is the path without pre-aggregated per-minute buckets: its figure is what
the buckets the writer is to write must beat (target for 10M records: 5 SLOs in < 1 s).
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from aisre.clock import ManualClock
from aisre.config.slo import SLOConfig
from aisre.records import InferenceRecord, Label, Status
from aisre.slo.evaluate import evaluate
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0
SLOS = [
    SLOConfig(name="availability", model="fraud", objective=0.999, sli={"kind": "availability"}),
    SLOConfig(name="latency", model="fraud", objective=0.999, sli={"kind": "latency", "threshold_s": 0.2}),
    SLOConfig(name="correctness", model="fraud", objective=0.99, sli={"kind": "correctness"}),
    SLOConfig(
        name="p99",
        model="fraud",
        objective=0.99,
        timeslice="5m",
        sli={"kind": "latency", "percentile": 0.99, "threshold_s": 0.5},
    ),
    SLOConfig(
        name="accuracy-critical",
        model="fraud",
        objective=0.99,
        timeslice="1h",
        sli={"kind": "quality", "metric": "accuracy", "min": 0.95, "where": {"tags.use_case": "critical"}},
    ),
]


def fill(store: SQLiteStore, n: int, days: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    span = days * 86_400
    ts = np.sort(rng.uniform(T0, T0 + span, n))
    latency = rng.lognormal(np.log(0.05), 0.6, n)
    errors = rng.random(n) < 0.001
    truth = rng.integers(0, 2, n)
    wrong = rng.random(n) < 0.03
    critical = rng.random(n) < 0.1
    for start in range(0, n, 50_000):
        batch, labels = [], []
        for i in range(start, min(start + 50_000, n)):
            rid = f"r{i}"
            batch.append(
                InferenceRecord(
                    model="fraud",
                    version="v1",
                    inputs={"amount": i % 100},
                    prediction=int(truth[i] ^ wrong[i]),
                    status=Status.ERROR if errors[i] else Status.OK,
                    latency_s=float(latency[i]),
                    tags={"use_case": "critical"} if critical[i] else {},
                    ts=float(ts[i]),
                    id=rid,
                )
            )
            labels.append(Label(rid, int(truth[i]), float(ts[i])))
        store.write_batch(batch)
        store.add_labels(labels)
    return T0 + span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or create) this store")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "slo.db"
    fresh = not db.exists()
    store = SQLiteStore(db)
    if fresh:
        started = time.perf_counter()
        end = fill(store, args.records, args.days)
        print(f"filled {args.records:,} records in {time.perf_counter() - started:.1f} s ({db})")
    else:
        end = T0 + args.days * 86_400
    clock = ManualClock(end)
    total = 0.0
    for slo in SLOS:
        best = min(_timed(slo, store, clock) for _ in range(args.repeat))
        total += best
        (report,) = evaluate([slo], store, clock)
        print(f"{slo.name:>18}: {best:7.3f} s  (SLI {report.sli:.4f}, {report.budget.total:,.0f} events)")  # type: ignore[union-attr]
    print(f"{'all five':>18}: {total:7.3f} s for {store.count():,} records")


def _timed(slo: SLOConfig, store: SQLiteStore, clock: ManualClock) -> float:
    started = time.perf_counter()
    evaluate([slo], store, clock)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
