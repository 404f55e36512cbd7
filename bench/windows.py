"""Per-window cutting: one grouping of rows by window vs one scan of every row per window.

    .venv/bin/python bench/windows.py [--rows 1000000] [--windows 720] [--repeat 3] [--seed 0]

Generates (numpy, seeded) `--rows` labelled binary predictions with a score and a two-value
sensitive tag, spread uniformly over `--windows` hours, and times, side by side in this one
process run:

- cutting alone: `LabeledWindow.select(idx == w)` for every window (how fairness and CBPE
  cut before: each window rescans every row) vs `window_rows` (one stable argsort of the
  window index, then each window is a slice) + `select(rows)`;
- end to end: `fairness_over_time`, `CBPE.estimate_over_time` and `performance_over_time`
  (accuracy, precision, recall: Wilson intervals, no bootstrap, so the cutting shows) with
  the grouping, and again with `window_rows` swapped for the per-window rescan (exactly the cut
fairness and CBPE made before; performance_over_time already grouped, so its "rescan" column
shows what it was spared).

Both ways pick the same rows in the same order, so the results are asserted equal. Times are
the best of `--repeat` rounds in seconds, the two ways alternating within each round so that
load from other processes on a shared machine hits both alike. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from aisre.monitor.fairness import fairness_over_time
from aisre.monitor.performance import CBPE, performance_over_time
from aisre.monitor.tabular import LabeledWindow, window_index
from aisre.monitor.tabular import windows as windowing

HOUR = 3600.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % HOUR  # window-aligned, so --windows hours give --windows windows


def generate(n: int, hours: int, seed: int) -> LabeledWindow:
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.uniform(0, hours * HOUR, n))
    score = rng.beta(2, 2, n)
    truth = rng.random(n) < score  # calibrated scores
    pred = score >= 0.5
    group = np.where(rng.random(n) < 0.4, "a", "b").astype(object)
    return LabeledWindow(
        truth.astype(np.float64),
        pred.astype(np.float64),
        np.column_stack([1 - score, score]),
        ["0", "1"],
        ts,
        {"group": group},
    )


def rescan_window_rows(ts: np.ndarray, width: float, start: Any = None, end: Any = None) -> list:
    """The old cut: a boolean mask over every row, for every window."""
    starts, idx = window_index(ts, width, start, end)
    return [(float(lo), float(lo + width), idx == w) for w, lo in enumerate(starts)]


def side_by_side(old: Callable[[], Any], new: Callable[[], Any], repeat: int) -> tuple[float, float, Any, Any]:
    """Best time of each over `repeat` rounds, the two alternating so that load on a shared
    machine hits both alike; and each one's last result."""
    t_old, t_new = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out_old = old()
        t1 = time.perf_counter()
        out_new = new()
        t2 = time.perf_counter()
        t_old.append(t1 - t0)
        t_new.append(t2 - t1)
    return min(t_old), min(t_new), out_old, out_new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=720)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = generate(args.rows, args.windows, args.seed)
    print(f"{args.rows:,} rows, {args.windows} windows of 1h, best of {args.repeat}")

    def cut_rescan() -> list[int]:
        return [len(data.select(mask)) for _, _, mask in rescan_window_rows(data.ts, HOUR)]

    def cut_grouped() -> list[int]:
        return [len(data.select(rows)) for _, _, rows in windowing.window_rows(data.ts, HOUR)]

    t_old, t_new, n_old, n_new = side_by_side(cut_rescan, cut_grouped, args.repeat)
    assert n_old == n_new and len(n_new) == args.windows and sum(n_new) == args.rows
    print(f"{'cutting alone':<28} rescan {t_old:8.3f} s   grouped {t_new:8.3f} s   {t_old / t_new:6.1f}x")

    reference = generate(20_000, 1, args.seed + 1)
    cbpe = CBPE(calibration="never").fit(reference.y_true, reference.y_score[:, 1], classes=["0", "1"])
    runs = {
        "fairness_over_time": lambda: fairness_over_time(data, "group", "1h"),
        "CBPE.estimate_over_time": lambda: cbpe.estimate_over_time(data, "1h"),
        "performance_over_time": lambda: performance_over_time(
            data, "1h", ["accuracy", "precision", "recall"], pos_label=1.0
        ),
    }
    grouped = windowing.window_rows

    def rescanning(run: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            windowing.window_rows = rescan_window_rows
            try:
                return run()
            finally:
                windowing.window_rows = grouped

        return call

    for name, run in runs.items():
        t_old, t_new, old, new = side_by_side(rescanning(run), run, args.repeat)
        assert len(new) == args.windows and _same(old.rows(), new.rows()), name
        print(f"{name:<28} rescan {t_old:8.3f} s   grouped {t_new:8.3f} s   {t_old / t_new:6.1f}x")


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)
        for x, y in zip(a, b, strict=True)
    )


if __name__ == "__main__":
    main()
