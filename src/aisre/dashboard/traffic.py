"""Traffic series from the store's per-minute rollup (`aisre.store.rollups`): counts, percentiles, tokens, cost."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from aisre.dashboard.params import TimeRange
from aisre.store import rollups

_AT = {c: k for k, c in enumerate(rollups.COLUMNS)}
_HIST = {h: [_AT[c] for c in rollups.bucket_columns(h)] for h in rollups.HISTOGRAMS}
#: (field, histogram, quantile) of each percentile series.
PERCENTILES = (
    ("latency_p50_s", "latency", 0.50),
    ("latency_p95_s", "latency", 0.95),
    ("latency_p99_s", "latency", 0.99),
    ("ttft_p50_s", "ttft", 0.50),
    ("ttft_p95_s", "ttft", 0.95),
    ("tpot_p50_s", "tpot", 0.50),
    ("tpot_p95_s", "tpot", 0.95),
)
COUNTS = ("requests", "errors", "cancelled", "fallbacks", "tokens")


#: The columns summed for a model without TTFT/TPOT (a classical model): its token histograms are all 0.
CLASSICAL = tuple(c for c in rollups.COLUMNS if not c.startswith(("ttft_", "tpot_")))


def _grid(rows: list[tuple[Any, ...]], n: int, columns: tuple[str, ...] = rollups.COLUMNS) -> np.ndarray:
    """(n, len(COLUMNS)) sums, zero where a step has no traffic (and in the columns not read)."""
    out = np.zeros((n, len(rollups.COLUMNS)))
    if rows:
        data = np.array(rows, dtype=np.float64)
        keep = (data[:, 0] >= 0) & (data[:, 0] < n)
        at = np.array([_AT[c] for c in columns])
        out[np.ix_(data[keep, 0].astype(np.int64), at)] = data[keep, 1:]
    return out


def _series(grid: np.ndarray) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {name: grid[:, _AT[name]].astype(np.int64).tolist() for name in COUNTS}
    out["cost_usd"] = np.round(grid[:, _AT["cost_usd"]], 9).tolist()
    for name, hist, q in PERCENTILES:
        out[name] = rollups.percentiles(grid[:, _HIST[hist]], q)
    count = grid[:, _AT["latency_count"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = grid[:, _AT["latency_sum"]] / count
    out["latency_mean_s"] = [None if c == 0 else m for c, m in zip(count.tolist(), mean.tolist(), strict=True)]
    return out


def traffic_series(
    conn: sqlite3.Connection, model: str, rng: TimeRange, version: str | None = None, llm: bool = True
) -> dict[str, dict[str, list[Any]]]:
    """Per version, the series of the contract's `GET /models/{model}/traffic`, aligned on `rng.starts`.
    `llm=False` (a model known to be classical) skips summing the TTFT/TPOT histograms: a third of the work."""
    columns = rollups.COLUMNS if llm else CLASSICAL
    by_version = rollups.steps(conn, model, rng.first, rng.step_s, rng.n, version, columns)
    return {v: _series(_grid(rows, rng.n, columns)) for v, rows in by_version.items()}


def empty_window() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "error_rate": None,
        "fallbacks": 0,
        "latency_p50_s": None,
        "latency_p99_s": None,
        "tokens": 0,
        "cost_usd": 0.0,
    }


def last_window(conn: sqlite3.Connection, model: str, now: float, length_s: int) -> dict[str, dict[str, Any]]:
    """Per version, the totals of the last `length_s` seconds (whole minutes, the current one included)."""
    minutes = max(1, length_s // 60)
    first = (int(now // 60) - minutes + 1) * 60
    out = {}
    for version, rows in rollups.steps(conn, model, first, minutes * 60, 1).items():
        grid = _grid(rows, 1)
        requests = int(grid[0, _AT["requests"]])
        errors = int(grid[0, _AT["errors"]])
        hist = grid[:, _HIST["latency"]]
        out[version] = {
            "requests": requests,
            "errors": errors,
            "error_rate": None if requests == 0 else errors / requests,
            "fallbacks": int(grid[0, _AT["fallbacks"]]),
            "latency_p50_s": rollups.percentiles(hist, 0.5)[0],
            "latency_p99_s": rollups.percentiles(hist, 0.99)[0],
            "tokens": int(grid[0, _AT["tokens"]]),
            "cost_usd": round(float(grid[0, _AT["cost_usd"]]), 9),
        }
    return out
