"""What the dashboard's traffic rollup costs the writer: `write_batch` with and without it, interleaved.

    .venv/bin/python bench/rollup_cost.py [--batches 40] [--batch 4096]

Two stores in one process get the same kind of batches (bench/ingest.py's 12-feature records) in
turn; one has `aisre.store.rollups.after_records` replaced by a no-op. Interleaving keeps a busy
machine's noise out of the ratio. Results: docs/benchmarks.md ("Dashboard").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from aisre.store import rollups  # noqa: E402
from aisre.store.sqlite import SQLiteStore  # noqa: E402
from ingest import make_records  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    real = rollups.after_records
    tmp = tempfile.mkdtemp()
    stores = {"with rollup": SQLiteStore(f"{tmp}/a.db"), "without": SQLiteStore(f"{tmp}/b.db")}
    times: dict[str, list[float]] = {name: [] for name in stores}
    try:
        for _ in range(args.batches):
            for name, store in stores.items():
                records = make_records(args.batch)
                rollups.after_records = real if name == "with rollup" else (lambda conn, records=None: None)
                started = time.perf_counter()
                store.write_batch(records)
                times[name].append(time.perf_counter() - started)
    finally:
        rollups.after_records = real
    with_, without = statistics.median(times["with rollup"]), statistics.median(times["without"])
    print(f"write_batch of {args.batch} records (median of {args.batches}):")
    print(f"  without rollup: {without * 1e3:6.1f} ms  ({args.batch / without:,.0f} records/s)")
    print(f"  with rollup:    {with_ * 1e3:6.1f} ms  ({args.batch / with_:,.0f} records/s)")
    cost = with_ - without
    print(f"  rollup cost:    {cost * 1e3:6.1f} ms per batch, {cost / args.batch * 1e6:.1f} µs per record,")
    print(f"                  +{(with_ / without - 1) * 100:.0f}% writer time")


if __name__ == "__main__":
    main()
