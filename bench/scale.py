"""Drift on N + N rows x 25 columns: aisre in one process vs Spark local[2] vs a Dask LocalCluster.

    .venv/bin/python bench/scale.py --rows 10000000      # the issue's size (needs ~16 GB of RAM)
    .venv/bin/python bench/scale.py --rows 1000000       # what a shared 2-core box does in minutes

The data are written once as Parquet (reference and current, 8 files each) and every engine reads
them from disk, so all three pay for reading. Reported: wall time, peak resident memory of the
driver and of each worker process (psutil, sampled every 0.2 s), and the per-column verdicts
compared with the one-process result. Evidently's Spark engine is tried only if bench/.venvs/evidently
has pyspark (it is not installed for this).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

import aisre

FILES = 8


def make(root: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for role, drifted in (("reference", False), ("current", True)):
        (root / role).mkdir(parents=True)
        for f in range(FILES):
            n = rows // FILES
            cols = {}
            for i in range(18):
                shift = 0.3 if drifted and i < 4 else 0.0
                cols[f"num_{i}"] = rng.normal(shift, 1 + i / 10, n)
            for i in range(2):
                cols[f"few_{i}"] = rng.integers(0, 4 + i, n).astype(float)
            for i in range(5):
                p = np.ones(6) / 6 if not (drifted and i == 0) else np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
                cols[f"cat_{i}"] = rng.choice(np.array([f"v{k}" for k in range(6)]), n, p=p)
            pq.write_table(pa.table(cols), root / role / f"part-{f}.parquet")


class Peak:
    """Peak RSS of this process and of each child process (the workers), sampled in a thread."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.driver = 0
        self.workers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.driver = max(self.driver, self.me.memory_info().rss)
                for child in self.me.children(recursive=True):
                    try:
                        rss = child.memory_info().rss
                    except psutil.Error:
                        continue
                    self.workers[child.pid] = max(self.workers.get(child.pid, 0), rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        big = sorted(self.workers.values(), reverse=True)[:4]
        workers = ", ".join(f"{v / 2**20:.0f}" for v in big) or "-"
        return f"driver {self.driver / 2**20:.0f} MB, largest workers [{workers}] MB"


def one_process(root: Path) -> tuple[aisre.monitor.DatasetDrift, float]:
    ref = pq.read_table(root / "reference")
    cur = pq.read_table(root / "current")
    return aisre.drift(ref, cur), 0.0


def spark_run(root: Path) -> tuple[aisre.monitor.DatasetDrift, float]:
    from pyspark.sql import SparkSession

    t = time.perf_counter()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.range(1).count()  # the JVM and the first Python worker are up
    startup = time.perf_counter() - t
    try:
        ref, cur = spark.read.parquet(str(root / "reference")), spark.read.parquet(str(root / "current"))
        return aisre.drift(ref, cur), startup
    finally:
        spark.stop()


def dask_run(root: Path) -> tuple[aisre.monitor.DatasetDrift, float]:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    t = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            startup = time.perf_counter() - t
            ref, cur = dd.read_parquet(str(root / "reference")), dd.read_parquet(str(root / "current"))
            return aisre.drift(ref, cur), startup


def run_one(name: str, root: Path) -> None:
    """In a child process: one engine, then one JSON line (time, memory, per-column results)."""
    runs = {"one": one_process, "spark": spark_run, "dask": dask_run}
    with Peak() as peak:
        t = time.perf_counter()
        result, startup = runs[name](root)
        seconds = time.perf_counter() - t - startup
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KB
    columns = {c: [r.method, r.statistic, r.drift] for c, r in result.columns.items()}
    workers = sorted(peak.workers.values(), reverse=True)
    print(json.dumps({"seconds": seconds, "startup": startup, "driver": own, "workers": workers, "columns": columns}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows per side (default 10M, as issue #12)")
    parser.add_argument("--engines", default="one,spark,dask")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: run one engine in this process
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        run_one(args.only, Path(args.root))
        return
    root = Path(tempfile.mkdtemp(prefix="aisre-scale-"))
    try:
        t = time.perf_counter()
        make(root, args.rows)
        print(f"data: {args.rows:,} + {args.rows:,} rows x 25 columns as Parquet in {time.perf_counter() - t:.1f} s")
        results = {}
        for name in args.engines.split(","):
            cmd = [sys.executable, __file__, "--only", name, "--root", str(root)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
            if line is None:
                print(f"{name:>6}: failed\n{done.stderr[-2000:]}")
                continue
            r = results[name] = json.loads(line)
            drifted = sum(v[2] for v in r["columns"].values())
            workers = ", ".join(f"{w / 2**20:.0f}" for w in r["workers"][:4]) or "-"
            print(
                f"{name:>6}: {r['seconds']:7.1f} s (+ {r['startup']:.1f} s start-up)  peak RSS: driver "
                f"{r['driver'] / 2**20:.0f} MB, workers [{workers}] MB  drifted {drifted}/{len(r['columns'])}"
            )
        if "one" in results:
            base = results["one"]["columns"]
            for name, r in results.items():
                cols = r["columns"]
                agree = sum(cols[c][2] == base[c][2] for c in base)
                worst = max(abs(cols[c][1] - base[c][1]) for c in base)
                print(f"{name:>6}: verdicts agree on {agree}/{len(base)} columns, largest |statistic diff| {worst:.2e}")
        evidently = Path(__file__).parent / ".venvs" / "evidently"
        has_spark = any(evidently.glob("lib/python*/site-packages/pyspark"))
        state = "installed, not run by this script" if has_spark else "pyspark not in bench/.venvs/evidently: skipped"
        print(f"evidently spark engine: {state}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
