"""Ingest benchmark: batching-writer throughput and the per-call cost of Monitor.record.

    .venv/bin/python bench/ingest.py [--records 300000] [--calls 200000] [--store postgresql://...] [--no-calls]
    .venv/bin/python bench/ingest.py --writers 1,2,4 [--records 300000] [--store postgresql://...]

Compares, on the same inputs in one process run: a bare model call; the same call plus
`Monitor.record` (fast path: metrics + queue; the writer thread commits to SQLite
meanwhile, so its GIL share is included); the same call plus the naive
`print(json.dumps(...))` log line (stdout to /dev/null). Prints ratios.
Targets (issue 2): >= 100,000 records/s ingest, <= 20 µs overhead per call.
With `--store postgresql://...` the same writer runs into that database too, in the same run
(COPY and executemany in pipeline mode side by side); target (issue 12) >= 50,000 records/s.

`--writers 1,2,4` measures a fleet instead: N processes (each its own store connection and batching
writer, fast mode, records/N each) write into one store at once, SQLite and (with `--store`) PostgreSQL
with each `--pg-methods` insert method (default copy); total records/s from the common start to the
last commit, and the ratio to the first count. On PostgreSQL every batch holds one advisory lock from
its inserts to its COMMIT (docs/decisions.md), so this is what that serialisation leaves of a fleet's
throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time

import aisre
import aisre.telemetry
from aisre.records import InferenceRecord
from aisre.store import BatchingWriter, open_store

FEATURES = {f"f{i}": float(i) * 1.5 for i in range(10)} | {"country": "FR", "channel": "web"}


def model(x: dict) -> int:
    return int(x["f1"] > 1.0)


def make_records(n: int) -> list[InferenceRecord]:
    return [
        InferenceRecord(
            model="fraud",
            version="v1",
            inputs=dict(FEATURES, f0=float(i)),
            prediction=i % 2,
            scores={"0": 0.3, "1": 0.7},
            latency_s=0.002,
        )
        for i in range(n)
    ]


def ingest(n: int, tmp: str, durability: str = "fast", threads: int = 1, store=None) -> float:
    """Records/s from first submit to last commit through the batching writer."""
    store = store or open_store(f"sqlite:///{tmp}/ingest-{durability}-{threads}.db")
    before = store.count()
    writer = BatchingWriter([store], durability=durability, queue_size=max(n, 100_000))
    per_thread = make_records(n // threads)
    batches = [per_thread if t == 0 else make_records(n // threads) for t in range(threads)]
    started = time.perf_counter()
    workers = [threading.Thread(target=lambda b=b: [writer.submit(r) for r in b]) for b in batches]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    writer.flush(timeout=600)
    elapsed = time.perf_counter() - started
    assert store.count() - before == n // threads * threads, "records missing"
    writer.close()
    return n // threads * threads / elapsed


def _open(url: str, insert_method: str | None):
    if insert_method is None:
        return open_store(url)
    from aisre.store.postgres import PostgresStore

    return PostgresStore(url, insert_method=insert_method)


def _fleet_writer(url: str, insert_method: str | None, n: int, ready, go, out) -> None:
    """One writer process: its own store and batching writer; reports (started, committed) monotonic times."""
    store = _open(url, insert_method)
    writer = BatchingWriter([store], durability="fast", queue_size=max(n, 100_000))
    records = make_records(n)
    ready.release()
    go.wait()
    started = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    for r in records:
        writer.submit(r)
    writer.flush(timeout=600)
    out.put((started, time.monotonic()))
    writer.close()


def fleet(url: str, n: int, writers: int, insert_method: str | None = None) -> tuple[float, _LockWaiters | None]:
    """Total records/s of `writers` processes writing n records into `url` at once (first start to last commit),
    and on PostgreSQL what the lock waits were."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    store = open_store(url)
    before = store.count()
    each = n // writers
    procs = [ctx.Process(target=_fleet_writer, args=(url, insert_method, each, ready, go, out)) for _ in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=300):
            raise RuntimeError("a writer process did not start in 300 s")
    waiting = _LockWaiters(url) if insert_method is not None else None
    go.set()
    times = [out.get(timeout=900) for _ in procs]
    if waiting is not None:
        waiting.stop()
    for p in procs:
        p.join(60)
        if p.exitcode != 0:
            raise RuntimeError(f"a writer process exited with {p.exitcode}")
    written = each * writers
    if store.count() - before != written:
        raise RuntimeError(f"{written - (store.count() - before)} records missing")
    store.close()
    return written / (max(end for _, end in times) - min(start for start, _ in times)), waiting


class _LockWaiters:
    """Samples, every 20 ms on its own connection, how many backends wait for an advisory lock (the writers
    queued behind `RECORDS_LOCK`): the mean says how much of the fleet the lock serialises."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self.samples: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        while not self._done.wait(0.02):
            self.samples.append(self._conn.execute(sql).fetchone()[0])

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._conn.close()

    def __str__(self) -> str:
        mean = sum(self.samples) / max(1, len(self.samples))
        busy = sum(1 for n in self.samples if n) / max(1, len(self.samples))
        return f"writers waiting for the lock: {mean:.2f} on average, >= 1 in {busy:.0%} of samples"


def fleets(args: argparse.Namespace, tmp: str) -> None:
    counts = [int(w) for w in args.writers.split(",")]
    stores: list[tuple[str, str, str | None]] = [("SQLite (WAL)", f"sqlite:///{tmp}/fleet.db", None)]
    if args.store:
        from aisre.store.postgres import redact

        for method in args.pg_methods.split(","):
            stores.append((f"PostgreSQL {method} {redact(args.store)}", args.store, method))
    print(f"\n== {', '.join(map(str, counts))} writer processes into one store, {args.records:,} records in all ==")
    for name, url, method in stores:
        print(name)
        first = None
        for w in counts:
            rate, waiting = fleet(url, args.records, w, method)
            first = first or rate
            label = f"{w} writer{'s' if w > 1 else ''}:"
            lock = f"; {waiting}" if waiting is not None else ""
            print(f"  {label:<12} {rate:>12,.0f} records/s  ({rate / first:.2f}x {counts[0]}){lock}")


def per_call(fn, calls: int, repeats: int = 5) -> float:
    """Median seconds per call over `repeats` loops of `calls` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - started) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--store", help="also ingest into this postgresql:// database (its records are kept)")
    parser.add_argument("--no-calls", action="store_true", help="skip the per-call cost section")
    parser.add_argument(
        "--writers", help="only the fleet section: N writer processes into one store, e.g. 1,2,4 (comma-separated)"
    )
    parser.add_argument(
        "--pg-methods",
        default="copy",
        help="with --writers and --store: insert_method(s) to run, e.g. copy",
    )
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="aisre-bench-")
    print(f"aisre {aisre.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.writers:
        fleets(args, tmp)
        return

    print("\n== batching writer -> SQLite (WAL), 12-feature records ==")
    fast = ingest(args.records, tmp)
    print(f"fast mode, 1 producer:          {fast:>12,.0f} records/s  (target >= 100,000)")
    durable = ingest(args.records // 10, tmp, "durable", threads=8)
    print(f"durable mode, 8 producers:      {durable:>12,.0f} records/s  (each acked after commit)")
    if args.store:
        postgres(args, tmp, fast, durable)
    if args.no_calls:
        return

    print("\n== per-call cost (µs), same inputs ==")
    monitor = aisre.Monitor("fraud", "v1", store=f"sqlite:///{tmp}/calls.db")
    x = FEATURES
    bare = per_call(lambda: model(x), args.calls)
    recorded = per_call(lambda: monitor.record(x, model(x), latency_s=0.001), args.calls)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        naive = per_call(
            lambda: print(
                json.dumps(
                    {"model": "fraud", "timestamp": dt.datetime.now().isoformat(), "input": x, "prediction": model(x)}
                )
            ),
            args.calls,
        )
    monitor.flush()
    assert monitor.store.count() >= args.calls * 5
    # The caller's own path, with the writer thread idle (it commits after the loop).
    idle_store = open_store(f"sqlite:///{tmp}/idle.db")
    idle = aisre.Monitor(
        "fraud",
        "v1",
        recorder=aisre.Recorder(
            idle_store,
            metrics=aisre.telemetry.Metrics(),
            writer=BatchingWriter([idle_store], queue_size=10**7, batch_size=10**7, flush_interval_s=3600),
        ),
    )
    caller_only = per_call(lambda: idle.record(x, model(x), latency_s=0.001), args.calls)
    idle.recorder.close()
    overhead = recorded - bare
    naive_overhead = naive - bare
    print(f"bare model call:                {bare * 1e6:>8.2f}")
    print(f"+ Monitor.record:               {recorded * 1e6:>8.2f}   overhead {overhead * 1e6:.2f} µs (target <= 20)")
    print(
        f"+ Monitor.record, writer idle:  {caller_only * 1e6:>8.2f}   overhead "
        f"{(caller_only - bare) * 1e6:.2f} µs (the caller's own path)"
    )
    print(f"+ print(json.dumps(...)):       {naive * 1e6:>8.2f}   overhead {naive_overhead * 1e6:.2f} µs")
    print(
        f"ratio Monitor.record / naive print overhead: {overhead / naive_overhead:.2f}x "
        "(and aisre's copy is durable, queryable, with metrics)"
    )
    monitor.close()


def postgres(args: argparse.Namespace, tmp: str, sqlite_fast: float, sqlite_durable: float) -> None:
    """The same ingest into PostgreSQL: COPY (the store's default) and executemany in pipeline mode."""
    from aisre.store.postgres import PostgresStore

    print(f"\n== batching writer -> PostgreSQL {PostgresStore(args.store).url}, same records ==")
    for method in ("copy", "pipeline"):
        store = PostgresStore(args.store, insert_method=method)
        fast = ingest(args.records, tmp, store=store)
        store = PostgresStore(args.store, insert_method=method)
        durable = ingest(args.records // 10, tmp, "durable", threads=8, store=store)
        print(
            f"{method:<8} fast, 1 producer:      {fast:>12,.0f} records/s  ({fast / sqlite_fast:.2f}x SQLite; "
            "target >= 50,000)"
        )
        print(
            f"{method:<8} durable, 8 producers: {durable:>12,.0f} records/s  ({durable / sqlite_durable:.2f}x SQLite)"
        )


if __name__ == "__main__":
    main()
