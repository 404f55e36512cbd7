"""A batch's traffic-rollup rows computed in Python, before PostgreSQL's write lock is taken.

Why: every `PostgresStore.write_batch` holds the advisory lock that serialises all gateways' batches from its
inserts to COMMIT (`aisre.store.dialects`), and the rollup's aggregate over the new rows was a quarter of that
time (31 of ~110 ms for 4096 records, docs/benchmarks.md). For a batch of a classical model (no TTFT, TPOT or
tokens: its bodies add nothing to the rollup) the same sums are computed here from the rows about to be written,
outside the lock; under it, `rollups` applies them only when the rows above the mark are exactly this batch (the
check SQLite's plain path makes: first and last id at hwm + 1 and the new max `seq`, as many rows between), and
otherwise runs the SQL over the rows, as before. Counts are exact; float sums (latency, cost) are added in
another order than the SQL's, so they may differ in the last bits (as the two backends already do).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from aisre.store.codec import COLUMNS as ROW_COLUMNS
from aisre.store.rollups import BOUNDS, PLAIN_COLUMNS

_TS, _MODEL, _VERSION, _ROUTE, _STATUS, _LATENCY, _COST = (
    ROW_COLUMNS.index(c) for c in ("ts", "model", "version", "route", "status", "latency_s", "cost_usd")
)
_FIRST_BUCKET = PLAIN_COLUMNS.index("latency_b00")
assert PLAIN_COLUMNS[:_FIRST_BUCKET] == [
    "requests", "errors", "cancelled", "fallbacks", "latency_count", "latency_sum", "cost_usd"
]  # fmt: skip


def batch_sums(records: Sequence[Any], rows: Sequence[tuple]) -> list[tuple] | None:
    """(model, version, minute, *PLAIN_COLUMNS) per minute of the batch's store `rows` (codec order, as
    written), or None when a record has TTFT, TPOT or tokens, or a latency or cost is not finite (the SQL
    then counts the batch: it alone reads bodies, and orders NaN as PostgreSQL does)."""
    for r in records:
        if r.ttft_s is not None or r.tpot_s is not None or r.input_tokens is not None or r.output_tokens is not None:
            return None
    out: dict[tuple[str, str, int], list[Any]] = {}
    width = len(PLAIN_COLUMNS)
    for row in rows:
        latency, cost = row[_LATENCY], row[_COST]
        if (latency is not None and not math.isfinite(latency)) or (cost is not None and not math.isfinite(cost)):
            return None
        key = (row[_MODEL], row[_VERSION], math.floor(row[_TS] / 60))
        sums = out.get(key)
        if sums is None:
            sums = out[key] = [0] * width
            sums[5] = sums[6] = 0.0
        sums[0] += 1
        status = row[_STATUS]
        if status == "error":
            sums[1] += 1
        elif status == "cancelled":
            sums[2] += 1
        if row[_ROUTE] == "fallback":
            sums[3] += 1
        if latency is not None:
            sums[4] += 1
            sums[5] += latency
            # The first bucket whose upper bound is >= latency, as rollups._bucket_of's SQL (overflow: the last).
            sums[_FIRST_BUCKET + bisect.bisect_left(BOUNDS, latency)] += 1
        if cost is not None:
            sums[6] += cost
    return [(*key, *sums) for key, sums in out.items()]
