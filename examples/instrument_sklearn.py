"""Instrument a scikit-learn model in three lines and see what aisre recorded.

Run with `make demo` (or `python examples/instrument_sklearn.py`). It trains a classifier
on scikit-learn's bundled breast-cancer data, serves a few thousand predictions through
`aisre.instrument`, attaches late labels to some of them, then prints the log summary,
where the records and metrics are, and a few lines of the Prometheus exposition.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import aisre
from aisre.store.summary import summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="sqlite:///PATH (default: a temp dir)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=0, help="metrics port (0 = any free)")
    parser.add_argument("--hold", type=float, default=0, help="seconds to keep /metrics up")
    args = parser.parse_args()
    console = Console()
    store = args.store or f"sqlite:///{os.path.join(tempfile.mkdtemp(prefix='aisre-demo-'), 'aisre.db')}"

    data = load_breast_cancer(as_frame=True)
    X_train, X_live, y_train, y_live = train_test_split(data.data, data.target, test_size=0.5, random_state=0)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X_train, y_train)

    # --- the three lines ---------------------------------------------------------------
    monitor = aisre.Monitor("breast-cancer", "v1", store=store)
    metrics_url = monitor.serve_metrics(port=args.port)
    model = aisre.instrument(model, monitor=monitor)
    # -----------------------------------------------------------------------------------

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    ids, truths = [], []
    with console.status(f"serving {args.requests} predictions"):
        for _ in range(args.requests // 10):  # requests arrive in small batches of 10 rows
            rows = rng.integers(0, len(X_live), 10)
            model.predict_proba(X_live.iloc[rows])
            ids.extend(model.last_record_ids)
            truths.extend(y_live.iloc[rows].tolist())
    elapsed = time.perf_counter() - started
    # Ground truth arrives later, and only for some: label half of them.
    monitor.label_many(zip(ids[::2], truths[::2], strict=True))
    monitor.flush()

    labeled = monitor.store.labeled_records()
    accuracy = np.mean([r.prediction == label.value for r, label in labeled])
    console.print(
        f"[bold]served[/] {len(ids):,} predictions in {elapsed:.2f} s; "
        f"{len(labeled):,} labeled later, accuracy on those {accuracy:.3f}"
    )

    table = Table(title="aisre log stats")
    for name in ("model", "version", "count", "error rate", "p50 ms", "p99 ms"):
        table.add_column(name)
    for row in summarize(monitor.store):
        table.add_row(
            row.model,
            row.version,
            f"{row.count:,}",
            f"{row.error_rate:.2%}",
            f"{row.latency_p50_s * 1000:.2f}",
            f"{row.latency_p99_s * 1000:.2f}",
        )
    console.print(table)

    one = monitor.store.records(limit=1)[0]
    console.print(
        "[bold]one record[/]:",
        {
            "id": one.id,
            "model": one.model,
            "version": one.version,
            "prediction": one.prediction,
            "scores": one.scores,
            "latency_s": round(one.latency_s, 5),
            "inputs": dict(list(one.inputs.items())[:3]) | {"...": f"{len(one.inputs) - 3} more"},
        },
    )

    exposition = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    wanted = (
        "aisre_predictions_total",
        "aisre_inference_duration_seconds_count",
        "aisre_records_written_total",
        "aisre_records_dropped_total",
    )
    console.print("[bold]metrics[/] (excerpt of", metrics_url + "):")
    for line in exposition.splitlines():
        if line.startswith(wanted):
            console.print("  " + line, highlight=False, soft_wrap=True)
    console.print(f"[bold]records[/] in {store}")
    cli = os.path.relpath(os.path.join(os.path.dirname(sys.executable), "aisre"))
    console.print(f"  try: {cli} log stats --store {store}", soft_wrap=True)
    console.print(f"       {cli} log tail -n 5 --store {store}", soft_wrap=True)
    if args.hold:
        console.print(f"serving {metrics_url} for {args.hold:g} s")
        time.sleep(args.hold)
    monitor.close()


if __name__ == "__main__":
    main()
