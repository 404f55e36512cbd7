"""The judge at scale: `slo status` for five SLOs over 30 days of records, and a monitoring job's cost.

    .venv/bin/python bench/slo.py [--records 10000000] [--days 30] [--label-share 0.1] [--repeat 3] [--db PATH]

1. Fills a fresh SQLite store with `--records` fraud predictions spread uniformly over `--days`
   days (numpy, seeded; 0.1% errors, log-normal latency, a `use_case=critical` tag on one in
   ten, a label on `--label-share` of them), through `SQLiteStore.write_batch` / `add_labels`
   with the five SLOs already registered, so the per-minute buckets are kept as records
   commit. Prints the write rate, and the same rate for 200k records with no SLO registered
   (what the buckets cost the writer).
2. Times `evaluate()` for the five SLOs at the end of the period (what `aisre slo status`
   does; best of `--repeat`): availability, latency < 200 ms and correctness by events; p99
   latency per 5-minute slice and hourly accuracy on the critical tag by timeslices.
   Target (issue #9): < 1 s for 10M records. Also the first evaluation of an SLO registered
   after the fact (its buckets are built from the records once).
3. The monitoring job's cost per 100k records per window: a `data_drift` check (3 input
   columns) + prediction drift over count windows of 100k stored records, on a job's first run
   (3 windows of catch-up) and on its next run (3 new windows), best of `--repeat` each.

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
from aisre.slo.events import sli_series
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0
BATCH = 20_000
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
LATE = SLOConfig(name="latency-late", model="fraud", objective=0.99, sli={"kind": "latency", "threshold_s": 0.1})


def fill(store: SQLiteStore, n: int, days: float, label_share: float, seed: int = 0, prefix: str = "r") -> float:
    """Writes `n` records (and labels) in batches; returns the seconds spent in the store."""
    rng = np.random.default_rng(seed)
    span = days * 86_400
    spent = 0.0
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        ts = np.sort(rng.uniform(T0 + span * start / n, T0 + span * (start + m) / n, m))
        latency = rng.lognormal(np.log(0.05), 0.6, m)
        errors = rng.random(m) < 0.001
        truth = rng.integers(0, 2, m)
        wrong = rng.random(m) < 0.03
        critical = rng.random(m) < 0.1
        amount = rng.gamma(2.0, 50.0, m)
        batch = [
            InferenceRecord(
                model="fraud",
                version="v1",
                inputs={"amount": float(amount[i]), "merchant": int(i % 40), "hour": int(ts[i] // 3600 % 24)},
                prediction=int(truth[i] ^ wrong[i]),
                status=Status.ERROR if errors[i] else Status.OK,
                latency_s=float(latency[i]),
                tags={"use_case": "critical"} if critical[i] else {},
                ts=float(ts[i]),
                id=f"{prefix}{start + i}",
            )
            for i in range(m)
        ]
        labelled = np.flatnonzero(rng.random(m) < label_share)
        labels = [Label(f"{prefix}{start + i}", int(truth[i]), float(ts[i]) + 3600) for i in labelled]
        started = time.perf_counter()
        store.write_batch(batch)
        store.add_labels(labels)
        spent += time.perf_counter() - started
    return spent


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--label-share", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or create) this store")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "slo.db"
    end = T0 + args.days * 86_400
    clock = ManualClock(end)
    fresh = not db.exists()
    store = SQLiteStore(db)
    if fresh:
        base = SQLiteStore(db.with_name("baseline.db"))
        n0 = min(200_000, args.records)
        spent = fill(base, n0, args.days * n0 / args.records, args.label_share, seed=1)
        print(f"write without SLOs: {n0 / spent:,.0f} records/s (+ their labels)")
        for slo in SLOS:
            sli_series(slo, store, T0, 60)  # registers the bucket spec
        spent = fill(store, args.records, args.days, args.label_share)
        print(f"write with 5 SLOs:  {args.records / spent:,.0f} records/s (+ their labels) -> {db}")
    n = store.count()
    seconds = best_of(args.repeat, lambda: evaluate(SLOS, store, clock))
    print(f"\nevaluate 5 SLOs over {n:,} records / {args.days:g} days: {seconds:.3f} s (best of {args.repeat})")
    for report in evaluate(SLOS, store, clock):
        assert report.budget is not None, report.problem
        one = best_of(args.repeat, lambda r=report: evaluate([s for s in SLOS if s.name == r.name], store, clock))
        print(
            f"  {report.name:>18}: {one:6.3f} s  SLI {report.sli:.4f} over {report.budget.total:,.0f} "
            f"{'events' if report.budgeting == 'events' else 'slices'}"
        )
    started = time.perf_counter()
    evaluate([LATE], store, clock)
    print(
        f"first evaluation of an SLO added afterwards (buckets built from the records): "
        f"{time.perf_counter() - started:.2f} s"
    )
    store.close()
    monitor_job_cost(db, end, args.repeat)


def monitor_job_cost(db: Path, end: float, repeat: int) -> None:
    """Seconds per window of 100k stored records for a data + prediction drift job (count windows,
    reference: the first 100k stored records). Two figures, best of `repeat` each:
    - first run: a job that never ran checks the newest `catch_up` (3) windows; it also counts the
      model's whole history once (the windows are aligned on its first record) and reads the reference;
    - steady state: the same runner's next run, checking the 3 windows that completed since.
    """
    from aisre.config.loader import config_from_dict
    from aisre.monitor.jobs.runner import MonitorRunner
    from aisre.store.base import RecordFilter

    store = SQLiteStore(db)
    conn = store._conn()  # noqa: SLF001 - read-only timing set-up
    every = 100_000
    first = store.nth_records(RecordFilter("fraud"), every)
    if not first or store.indexed_count(RecordFilter("fraud")) < 3 * every:
        print("monitoring job: needs >= 300k records")
        return
    cfg = config_from_dict(
        {
            "store": f"sqlite:///{db}",
            "monitors": [
                {
                    "name": "fraud-drift",
                    "model": "fraud",
                    "reference": {"since": T0, "until": first[0][0]},
                    "window": {"every": every},
                    "checks": ["data_drift", "prediction_drift"],
                    "catch_up": 3,
                }
            ],
        }
    )
    # records at or after `earlier` are the newest 3 windows' worth: the steady-state run's windows
    earlier = store.nth_records(RecordFilter("fraud"), 3 * every - 1, newest_first=True)[0][0]
    windows = {"first": 0, "steady": 0}
    seconds = {"first": float("inf"), "steady": float("inf")}

    def windows_of(signals: list) -> int:
        return len({(s.window_start, s.window_end) for s in signals})

    for _ in range(repeat):
        runner = MonitorRunner(cfg, store, ManualClock(end + 60))
        started = time.perf_counter()
        windows["first"] = windows_of(runner.run_due(end + 60))
        seconds["first"] = min(seconds["first"], time.perf_counter() - started)
        conn.execute("DELETE FROM signals")  # the next round starts from nothing again
        conn.commit()
        runner = MonitorRunner(cfg, store, ManualClock(earlier))
        runner.run_due(earlier + 1.0)  # (the job's default delay: 1 s) catches up to 3 windows before the end
        runner._reference(runner.jobs[0], earlier)  # noqa: SLF001 - loaded already, unless that run had no window
        started = time.perf_counter()
        windows["steady"] = windows_of(runner.run_due(end + 60))
        seconds["steady"] = min(seconds["steady"], time.perf_counter() - started)
        conn.execute("DELETE FROM signals")
        conn.commit()
    print("\nmonitoring job (data drift on 3 inputs + prediction drift), count windows of 100,000 records:")
    for name, what in (("first", "first run (counts the history, reads the reference)"), ("steady", "next run")):
        per = seconds[name] / max(windows[name], 1)
        print(f"  {what}: {seconds[name]:.2f} s for {windows[name]} windows -> {per:.2f} s per 100k-record window")


if __name__ == "__main__":
    main()
