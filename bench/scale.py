"""Drift on N + N rows x 25 columns: aisre in one process vs Spark local[2] vs a Dask LocalCluster,
and Evidently's own Spark engine on the same files.

    .venv/bin/python bench/scale.py --rows 10000000 --data /tmp/scale-10m   # the issue's size (~10 GB peak)
    .venv/bin/python bench/scale.py --rows 1000000                          # a shared 2-core box, in minutes
    .venv/bin/python bench/scale.py --rows 1000000 --engines one,evidently-spark

The data are written once as Parquet (reference and current, 8 files each; with --data DIR they are kept
there and reused by later runs of the same --rows) and every engine reads them from disk, so all of
them pay for reading. Each engine runs in its own process; reported: wall time (Spark/Dask start-up
apart), peak resident memory of that process (the driver) and of each of its descendants (Spark's JVM
and Python workers, Dask's nannies and workers; psutil, sampled every 0.2 s), and the per-column
verdicts compared with the one-process result.

evidently-spark is Evidently's legacy SparkEngine (`Report([DataDriftTable()]).run(..., engine=SparkEngine)`)
with the same Spark settings as aisre's Spark run. It needs pyspark < 4, so it runs under its own
virtualenv (bench/.venvs/evidently, see docs/benchmarks.md), launched by this script as a subprocess
of this same file; that interpreter imports only numpy, pyarrow, psutil, pyspark and Evidently.
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
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from aisre.monitor import DatasetDrift

FILES = 8
NUMERIC = [f"num_{i}" for i in range(18)] + [f"few_{i}" for i in range(2)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
EVIDENTLY_VENV = Path(__file__).resolve().parent / ".venvs" / "evidently"
# Evidently's display names -> aisre's method names.
METHODS = {"wasserstein distance (normed)": "wasserstein", "jensen-shannon distance": "jensenshannon"}


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
    (root / "meta.json").write_text(json.dumps({"rows": rows, "seed": seed, "files": FILES}))


def data_dir(where: str | None, rows: int) -> tuple[Path, bool]:
    """The Parquet pair for `rows`: reused from `where` if it holds the same rows, else written. (path, is_temp)"""
    if where is None:
        root = Path(tempfile.mkdtemp(prefix="aisre-scale-"))
        root.rmdir()
        temp = True
    else:
        root, temp = Path(where), False
        meta = root / "meta.json"
        if meta.exists() and json.loads(meta.read_text()).get("rows") == rows:
            print(f"data: reusing {rows:,} + {rows:,} rows x 25 columns in {root}")
            return root, temp
        if root.exists():
            shutil.rmtree(root)
    t = time.perf_counter()
    make(root, rows)
    print(f"data: {rows:,} + {rows:,} rows x 25 columns as Parquet in {root} ({time.perf_counter() - t:.1f} s)")
    return root, temp


class Peak:
    """Peak RSS of this process and of each descendant (the workers), sampled in a thread."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.driver = 0
        self.workers: dict[int, list[Any]] = {}  # pid -> [label, peak rss]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _label(self, child: psutil.Process) -> str:
        name = child.name()
        kind = "jvm" if name.startswith("java") else ("python" if name.startswith("python") else name)
        depth, p = 0, child
        while p is not None and p.pid != self.me.pid:
            depth, p = depth + 1, p.parent()
        return f"{kind}@{depth}"  # depth 1: started by the driver; 2: by a JVM or a nanny; ...

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.driver = max(self.driver, self.me.memory_info().rss)
                for child in self.me.children(recursive=True):
                    try:
                        rss = child.memory_info().rss
                        label = self._label(child)  # again each time: spark-submit's bash becomes the JVM
                    except psutil.Error:
                        continue
                    peak = max(self.workers.get(child.pid, ["", 0])[1], rss)
                    self.workers[child.pid] = [label, peak]
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_process(root: Path) -> tuple[DatasetDrift, float]:
    import aisre

    ref = pq.read_table(root / "reference")
    cur = pq.read_table(root / "current")
    return aisre.drift(ref, cur), 0.0


def spark_session() -> Any:
    """The same local[2] session for aisre's and Evidently's Spark runs."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1).count()  # the JVM and the first Python worker are up
    return spark


def spark_run(root: Path) -> tuple[DatasetDrift, float]:
    import aisre

    t = time.perf_counter()
    spark = spark_session()
    startup = time.perf_counter() - t
    try:
        ref, cur = spark.read.parquet(str(root / "reference")), spark.read.parquet(str(root / "current"))
        return aisre.drift(ref, cur), startup
    finally:
        spark.stop()


def dask_run(root: Path) -> tuple[DatasetDrift, float]:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import aisre

    t = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            startup = time.perf_counter() - t
            ref, cur = dd.read_parquet(str(root / "reference")), dd.read_parquet(str(root / "current"))
            return aisre.drift(ref, cur), startup


class OutOfBudget(Exception):
    """Raised between two columns once Evidently's run has used its --budget seconds."""


def evidently_spark_run(root: Path, budget: float) -> tuple[dict[str, list[Any]], float, bool]:
    """Evidently's legacy SparkEngine, DataDriftTable (per-column drift; the preset would compute it twice).

    Each column's result and time is taken as Evidently's own loop returns it (stderr shows the progress),
    so that a run stopped by `budget` (seconds, 0: none) still reports the columns it finished.
    """
    import evidently.legacy.spark.calculations.data_drift as ev_drift
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report
    from evidently.legacy.spark.engine import SparkEngine

    t = time.perf_counter()
    spark = spark_session()
    startup = time.perf_counter() - t
    begin = time.perf_counter()
    columns: dict[str, list[Any]] = {}
    original = ev_drift.get_one_column_drift

    def timed(**kwargs: Any) -> Any:
        if budget and time.perf_counter() - begin > budget:
            raise OutOfBudget
        one = time.perf_counter()
        m = original(**kwargs)
        seconds = time.perf_counter() - one
        method = METHODS.get(m.stattest_name.lower(), m.stattest_name)
        columns[m.column_name] = [method, float(m.drift_score), bool(m.drift_detected), seconds]
        print(f"evidently-spark: {m.column_name} {method} {seconds:.1f} s", file=sys.stderr, flush=True)
        return m

    ev_drift.get_one_column_drift = timed
    try:
        ref, cur = spark.read.parquet(str(root / "reference")), spark.read.parquet(str(root / "current"))
        mapping = ColumnMapping(
            numerical_features=NUMERIC, categorical_features=CATEGORICAL, target=None, prediction=None
        )
        report = Report(metrics=[DataDriftTable()])
        report.run(reference_data=ref, current_data=cur, column_mapping=mapping, engine=SparkEngine)
        try:  # Report.run keeps a metric's exception as its result; any but our own stop is a failure
            report._inner_suite.raise_for_error()
        except OutOfBudget:
            pass
        complete = len(columns) == len(NUMERIC) + len(CATEGORICAL)
        if complete:  # the report's own verdicts, checked against what the loop returned
            result = report.as_dict()["metrics"][0]["result"]["drift_by_columns"]
            assert all(result[c]["drift_detected"] == columns[c][2] for c in columns)
    finally:
        spark.stop()
    return columns, startup, complete


def run_one(name: str, root: Path, budget: float) -> None:
    """In a child process: one engine, then one JSON line (time, memory, per-column results)."""
    complete = True
    with Peak() as peak:
        t = time.perf_counter()
        if name == "evidently-spark":
            columns, startup, complete = evidently_spark_run(root, budget)
        else:
            runs = {"one": one_process, "spark": spark_run, "dask": dask_run}
            result, startup = runs[name](root)
            columns = {c: [r.method, r.statistic, r.drift] for c, r in result.columns.items()}
        seconds = time.perf_counter() - t - startup
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KB
    workers = sorted(peak.workers.values(), key=lambda w: -w[1])
    out = {"seconds": seconds, "startup": startup, "driver": own, "workers": workers, "columns": columns}
    print(json.dumps(out | {"complete": complete}))


def launch(name: str, root: Path, timeout: float, budget: float) -> dict[str, Any] | None:
    python = EVIDENTLY_VENV / "bin" / "python" if name == "evidently-spark" else Path(sys.executable)
    if not python.exists():
        print(f"{name:>15}: skipped, {python} missing (docs/benchmarks.md says how to make it)")
        return None
    cmd = [str(python), __file__, "--only", name, "--root", str(root), "--budget", str(budget)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        print(f"{name:>15}: no result within --timeout {timeout:.0f} s\n{str(e.stderr or '')[-3000:]}")
        return None
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
    if line is None:
        print(f"{name:>15}: failed (exit {done.returncode})\n{done.stderr[-3000:]}")
        return None
    result: dict[str, Any] = json.loads(line)
    return result


def report(name: str, r: dict[str, Any]) -> None:
    drifted = sum(v[2] for v in r["columns"].values())
    workers = ", ".join(f"{label} {rss / 2**20:.0f}" for label, rss in r["workers"][:6]) or "-"
    done = "" if r.get("complete", True) else f" (stopped by --budget after {len(r['columns'])} columns)"
    print(
        f"{name:>15}: {r['seconds']:7.1f} s (+ {r['startup']:.1f} s start-up){done}  peak RSS MB: driver "
        f"{r['driver'] / 2**20:.0f}; {workers}  drifted {drifted}/{len(r['columns'])}",
        flush=True,
    )


def compare(name: str, r: dict[str, Any], base: dict[str, list[Any]]) -> None:
    cols = r["columns"]
    both = [c for c in base if c in cols]
    agree = sum(cols[c][2] == base[c][2] for c in both)
    same = [c for c in both if cols[c][0] == base[c][0]]
    worst = max((abs(cols[c][1] - base[c][1]) for c in same), default=float("nan"))
    other = sorted({f"{cols[c][0]} on {c}" for c in both if c not in same})
    print(
        f"{name:>15}: verdicts agree on {agree}/{len(both)} columns; same method on {len(same)}, "
        f"largest |statistic diff| there {worst:.2e}" + (f"; other methods: {', '.join(other)}" if other else "")
    )
    if name == "evidently-spark":
        for c in both:
            b, e = base[c], cols[c]
            print(f"{'':>17}{c}: aisre {b[0]} {b[1]:.5f} {b[2]}  evidently {e[0]} {e[1]:.5f} {e[2]}  {e[3]:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows per side (default 10M, as issue #12)")
    parser.add_argument("--engines", default="one,spark,dask,evidently-spark")
    parser.add_argument("--data", help="keep the Parquet pair (and each engine's result) here; reused by later runs")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per engine, then killed (default 3600)")
    parser.add_argument(
        "--budget", type=float, default=0.0, help="evidently-spark: stop between columns after this many seconds"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: run one engine in this process
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        run_one(args.only, Path(args.root), args.budget)
        return
    root, temp = data_dir(args.data, args.rows)
    try:
        results = {}
        for name in args.engines.split(","):
            r = launch(name, root, args.timeout, args.budget)
            if r is not None:
                results[name] = r
                (root / f"result-{name}.json").write_text(json.dumps(r))
                report(name, r)
        for saved in sorted(root.glob("result-*.json")):  # engines measured by earlier runs on the same files
            name = saved.stem.removeprefix("result-")
            if name not in results:
                results[name] = json.loads(saved.read_text())
                print(f"{name:>15}: (an earlier run on these files) {saved}")
        if "one" in results:
            for name, r in results.items():
                compare(name, r, results["one"]["columns"])
    finally:
        if temp:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
