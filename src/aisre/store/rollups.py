"""Per-minute traffic rollups: requests, errors, latency/TTFT/TPOT histograms, tokens and cost per model version.

Why: the dashboard draws 30 days of traffic without reading 30 days of records. The table
`traffic_rollup` holds, per (model, version, minute of record time), the counts and sums a
traffic chart needs and a fixed log-spaced histogram of latency, TTFT and TPOT (one column per
bucket), from which percentiles are interpolated (`percentile`).

It is kept exactly as `aisre.store.buckets` keeps the SLO buckets: every `write_batch`, after
its inserts and in the same transaction, adds the rows with ``seq`` above the high-water mark in
`traffic_rollup_state` with one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` and
moves the mark to the newest ``seq``. So a crash, a duplicate record id (``INSERT OR IGNORE``
gives it no new ``seq``) or another process writing never double-counts nor skips: whoever
writes next catches up. A store opened on an older database builds the rollup of its existing
rows once (`catch_up`, in steps of `CHUNK_ROWS`). Rollups outlive record retention, as SLO buckets do.
The same code keeps it on PostgreSQL (same columns, bounds and fingerprint; the table and the row
projection in its SQL: `aisre.store.rollups_pg`); what else differs is `aisre.store.dialects`. The
readers (`read`, `steps`, `models`) take a `sqlite3.Connection` or a `PgConnection`.

Percentile error: a percentile read from the histogram lies in the same bucket as the exact
one, so it is off by less than that bucket's width: a factor of at most `RATIO` (about 1.33)
between 1 ms and 60 s; below 1 ms it is in [0, 1 ms]; above 60 s only ">= 60 s" is known.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from aisre.store.buckets import Connection
from aisre.store.dialects import dialect_of

log = logging.getLogger("aisre.store")

#: Histogram upper bounds in seconds: 40 log-spaced bounds from 1 ms to 60 s (plus an overflow bucket).
N_BOUNDS = 40
BOUNDS: tuple[float, ...] = tuple(
    float(f"{0.001 * (60.0 / 0.001) ** (k / (N_BOUNDS - 1)):.6g}") for k in range(N_BOUNDS)
)
RATIO = BOUNDS[1] / BOUNDS[0]
N_BUCKETS = N_BOUNDS + 1  # the last one counts values above 60 s
HISTOGRAMS = ("latency", "ttft", "tpot")
SUMS = (
    "requests",
    "errors",
    "cancelled",
    "fallbacks",
    "latency_count",
    "latency_sum",
    "ttft_count",
    "ttft_sum",
    "tpot_count",
    "tpot_sum",
    "tokens",
    "cost_usd",
)


def bucket_columns(histogram: str) -> list[str]:
    """The column names of one histogram, lowest bucket first."""
    return [f"{histogram}_b{k:02d}" for k in range(N_BUCKETS)]


_HIST_COLUMNS = [c for h in HISTOGRAMS for c in bucket_columns(h)]
COLUMNS = (*SUMS, *_HIST_COLUMNS)
# What the stored rollup was built with: other bounds or columns (another aisre version) rebuild it.
_FINGERPRINT = ",".join(repr(b) for b in BOUNDS) + "|" + ",".join(COLUMNS)

_TABLE = f"""
CREATE TABLE IF NOT EXISTS traffic_rollup (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    minute INTEGER NOT NULL,
    {", ".join(f"{c} {'REAL' if c.endswith(('_sum', 'cost_usd')) else 'INTEGER'} NOT NULL DEFAULT 0" for c in COLUMNS)},
    PRIMARY KEY (model, version, minute)
) WITHOUT ROWID"""
SCHEMA = f"""{_TABLE};
CREATE TABLE IF NOT EXISTS traffic_rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    hwm INTEGER NOT NULL,
    bounds TEXT NOT NULL
);
"""


def _bucket_of(x: str, lo: int = 0, hi: int = N_BOUNDS) -> str:
    """SQL for the bucket index of `x` (NULL stays NULL): the first k with x <= BOUNDS[k], else N_BOUNDS.

    A balanced tree of comparisons (6 deep), so it is exact at the bounds and cheap per row.
    """
    if lo == 0 and hi == N_BOUNDS:
        return f"CASE WHEN {x} IS NOT NULL THEN {_search(x, lo, hi)} END"
    return _search(x, lo, hi)


def _search(x: str, lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    mid = (lo + hi) // 2
    return f"CASE WHEN {x} <= {BOUNDS[mid]!r} THEN {_search(x, lo, mid)} ELSE {_search(x, mid + 1, hi)} END"


# Per row: one projection (json_extract only for bodies that hold the field), materialised so
# the extracts run once per row; then per (minute, bucket triple) counts; then the bucket columns.
_ROWS = (
    "WITH r AS MATERIALIZED (SELECT model, version, CAST(ts / 60 AS INTEGER) AS minute, status = 'error' AS err,"
    " status = 'cancelled' AS cncl,"
    " route = 'fallback' AS fb, latency_s AS lat, cost_usd AS cost,"
    " CASE WHEN instr(body, '\"ttft_s\"') THEN json_extract(body, '$.ttft_s') END AS ttft,"
    " CASE WHEN instr(body, '\"ttft_s\"') THEN json_extract(body, '$.tpot_s') END AS tpot,"
    " CASE WHEN instr(body, '\"input_tokens\"') THEN coalesce(json_extract(body, '$.input_tokens'), 0)"
    " + coalesce(json_extract(body, '$.output_tokens'), 0) ELSE 0 END AS tok"
    " FROM inferences NOT INDEXED WHERE seq > ? AND seq <= ?),"
    f" g AS (SELECT model, version, minute, {_bucket_of('lat')} AS lb, {_bucket_of('ttft')} AS tb,"
    f" {_bucket_of('tpot')} AS pb, count(*) AS n, total(err) AS e, total(cncl) AS cn, total(fb) AS f,"
    " count(lat) AS ln, total(lat) AS ls,"
    " count(ttft) AS fn, total(ttft) AS fs, count(tpot) AS pn, total(tpot) AS ps, total(tok) AS tk, total(cost) AS c"
    " FROM r GROUP BY model, version, minute, lb, tb, pb)"
)
_SELECT_SUMS = "sum(n), sum(e), sum(cn), sum(f), sum(ln), sum(ls), sum(fn), sum(fs), sum(pn), sum(ps), sum(tk), sum(c)"
_SELECT_HIST = ", ".join(
    f"total(CASE WHEN {col} = {k} THEN n END)" for col in ("lb", "tb", "pb") for k in range(N_BUCKETS)
)
_ADD = (
    f"{_ROWS} INSERT INTO traffic_rollup (model, version, minute, {', '.join(COLUMNS)})"
    f" SELECT model, version, minute, {_SELECT_SUMS}, {_SELECT_HIST} FROM g WHERE 1 GROUP BY model, version, minute"
    f" ON CONFLICT (model, version, minute) DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in COLUMNS)}"
)

# The same for rows known to hold no TTFT, TPOT or tokens (a batch of a classical model): no body is read,
# which is about half the cost.
PLAIN_COLUMNS = [c for c in COLUMNS if not c.startswith(("ttft_", "tpot_")) and c != "tokens"]
_ADD_PLAIN = (
    f"INSERT INTO traffic_rollup (model, version, minute, {', '.join(PLAIN_COLUMNS)})"
    " SELECT model, version, minute, sum(n), sum(e), sum(cn), sum(f), sum(ln), sum(ls), sum(c), "
    + ", ".join(f"total(CASE WHEN lb = {k} THEN n END)" for k in range(N_BUCKETS))
    + " FROM (SELECT model, version, CAST(ts / 60 AS INTEGER) AS minute,"
    f" {_bucket_of('latency_s')} AS lb, count(*) AS n, total(status = 'error') AS e,"
    " total(status = 'cancelled') AS cn, total(route = 'fallback') AS f, count(latency_s) AS ln,"
    " total(latency_s) AS ls, total(cost_usd) AS c FROM inferences NOT INDEXED WHERE seq > ? AND seq <= ?"
    " GROUP BY model, version, minute, lb) WHERE 1 GROUP BY model, version, minute"
    " ON CONFLICT (model, version, minute) DO UPDATE SET "
    + ", ".join(f"{c} = {c} + excluded.{c}" for c in PLAIN_COLUMNS)
)


# A batch's rows computed before the write lock (`aisre.store.rollup_batch`, PostgreSQL), added as they are.
_ADD_ROWS = (
    f"INSERT INTO traffic_rollup (model, version, minute, {', '.join(PLAIN_COLUMNS)})"
    f" VALUES ({', '.join('?' * (3 + len(PLAIN_COLUMNS)))}) ON CONFLICT (model, version, minute) DO UPDATE SET "
    + ", ".join(f"{c} = traffic_rollup.{c} + excluded.{c}" for c in PLAIN_COLUMNS)
)


# Per dialect: the table (rebuilt when the bounds change), the full sums, the sums without bodies (SQLite only).
def _sql(dialect: str) -> tuple[str, str, str | None]:
    if dialect == "sqlite":
        return _TABLE, _ADD, _ADD_PLAIN
    from aisre.store import rollups_pg  # its SQL is built from this module's bounds and columns

    return rollups_pg.TABLE, rollups_pg.ADD, None


def _plain(conn: Connection, records: Sequence[Any] | None, hwm: int, upto: int) -> bool:
    """Whether the rows above the mark are exactly `records` (this batch, all inserted) and none holds TTFT,
    TPOT or tokens, so the bodies need not be read. Checked without reading the rows: a batch's inserts get
    contiguous `seq`s in its order, so its first and last records sitting at hwm + 1 and upto (two lookups of
    the id index), with as many rows between as records, means no other writer's row is above the mark and
    no record of the batch was a duplicate."""
    if not records or upto - hwm != len(records):
        return False
    for r in records:
        if r.ttft_s is not None or r.tpot_s is not None or r.input_tokens is not None or r.output_tokens is not None:
            return False
    at = "SELECT seq FROM inferences WHERE id = ?"
    first, last = conn.execute(at, (records[0].id,)).fetchone(), conn.execute(at, (records[-1].id,)).fetchone()
    if first is None or last is None or first[0] != hwm + 1 or last[0] != upto:
        return False
    (rows,) = conn.execute("SELECT count(*) FROM inferences WHERE seq > ? AND seq <= ?", (hwm, upto)).fetchone()
    return bool(rows == len(records))


def _add(
    conn: Connection,
    hwm: int,
    upto: int,
    records: Sequence[Any] | None = None,
    sums: Sequence[tuple] | None = None,
) -> None:
    """Rows with hwm < seq <= upto added to the rollup; the mark moved to `upto` (same transaction). `sums`:
    the batch's rows computed beforehand (`rollup_batch`), used when the rows above the mark are the batch."""
    if upto > hwm:
        _, add, plain = _sql(dialect_of(conn).name)
        fast = (sums is not None or plain is not None) and _plain(conn, records, hwm, upto)
        if fast and sums is not None:
            conn.executemany(_ADD_ROWS, sums)
        else:
            conn.execute(plain if fast and plain is not None else add, (hwm, upto))
    conn.execute(
        "INSERT INTO traffic_rollup_state (id, hwm, bounds) VALUES (0, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET hwm = excluded.hwm, bounds = excluded.bounds",
        (upto, _FINGERPRINT),
    )


def after_records(conn: Connection, records: Sequence[Any] | None = None, sums: Sequence[tuple] | None = None) -> None:
    """Inside `write_batch`'s transaction (on PostgreSQL holding `RECORDS_LOCK`: `aisre.store.dialects` says why a
    ``seq`` mark needs it), after its inserts: count every row above the mark. `records` (the batch) lets a SQLite
    batch without LLM fields skip reading the bodies when it wrote every row above the mark; `sums` (a PostgreSQL
    batch's rollup rows, computed before the lock by `rollup_batch`) skip reading the rows at all then.

    A failure (it should not happen) is rolled back to a savepoint and logged, so the records still
    commit; the mark stays behind and a later batch retries."""
    d = dialect_of(conn)
    try:
        with d.savepoint(conn, "traffic_rollup"):
            _catch_up(conn, records, sums)
    except Exception as exc:
        if not d.swallowable(conn, exc):
            raise
        log.warning("traffic rollup not updated by this batch (caught up later): %s", exc)


#: Most rows one transaction adds: a store opened on a large older database builds its rollup in steps
#: (other writers go on meanwhile), and a batch never carries more than this much of someone else's backlog.
CHUNK_ROWS = 200_000


def _catch_up(conn: Connection, records: Sequence[Any] | None = None, sums: Sequence[tuple] | None = None) -> bool:
    """Add the rows above the mark (at most CHUNK_ROWS of them); True when nothing is left behind."""
    row = conn.execute("SELECT hwm, bounds FROM traffic_rollup_state WHERE id = 0").fetchone()
    upto = int(conn.execute("SELECT max(seq) FROM inferences").fetchone()[0] or 0)
    hwm = 0
    if row is None or row[1] != _FINGERPRINT:  # none yet, or built by another version: rebuilt from the records
        conn.execute("DROP TABLE IF EXISTS traffic_rollup")
        conn.execute(_sql(dialect_of(conn).name)[0])
    else:
        hwm = int(row[0])
        if upto <= hwm:
            return True
    end = min(upto, hwm + CHUNK_ROWS)
    _add(conn, hwm, end, *((records, sums) if end == upto else (None, None)))
    return end == upto


def catch_up(conn: Connection) -> None:
    """At store open: build the rollup of rows written before it existed (or by a writer that did not
    know it), in exclusive transactions (SQLite IMMEDIATE, PostgreSQL under `RECORDS_LOCK`) of at most
    CHUNK_ROWS rows. Two reads and no lock when nothing is behind; about a second per million rows on an
    older database, once."""
    row = conn.execute("SELECT hwm, bounds FROM traffic_rollup_state WHERE id = 0").fetchone()
    upto = int(conn.execute("SELECT max(seq) FROM inferences").fetchone()[0] or 0)
    if row is not None and row[1] == _FINGERPRINT and int(row[0]) >= upto:
        return
    if upto - (int(row[0]) if row is not None and row[1] == _FINGERPRINT else 0) > CHUNK_ROWS:
        log.info("building the dashboard's traffic rollup of the %d records already stored (once)", upto)
    d = dialect_of(conn)
    done = False
    while not done:
        with d.exclusive(conn, "records"):
            done = _catch_up(conn)


def read(
    conn: Connection,
    model: str,
    first_minute: int,
    last_minute: int,
    version: str | None = None,
    columns: Sequence[str] = COLUMNS,
) -> list[tuple[Any, ...]]:
    """(version, minute, *columns) rows of `model`, minutes in [first_minute, last_minute), by version and minute."""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"columns: unknown {unknown}; expected some of {list(COLUMNS)}")
    where, params = "model = ? AND minute >= ? AND minute < ?", [model, first_minute, last_minute]
    if version is not None:
        where += " AND version = ?"
        params.append(version)
    return conn.execute(
        f"SELECT version, minute, {', '.join(columns)} FROM traffic_rollup WHERE {where} ORDER BY version, minute",
        params,
    ).fetchall()


def models(conn: Connection) -> list[tuple[str, str]]:
    """(model, version) pairs with any rolled-up traffic, sorted: one primary-key seek per pair (a skip
    scan), not a scan of 30 days of minutes."""
    out: list[tuple[str, str]] = []
    row = conn.execute("SELECT model, version FROM traffic_rollup ORDER BY model, version LIMIT 1").fetchone()
    while row is not None:
        out.append((row[0], row[1]))
        row = conn.execute(
            "SELECT model, version FROM traffic_rollup WHERE (model, version) > (?, ?) ORDER BY model, version LIMIT 1",
            row,
        ).fetchone()
    return out


def percentile(counts: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of one histogram (`N_BUCKETS` counts), interpolated linearly inside its
    bucket as Prometheus' histogram_quantile does; None when empty. Overflow answers the last bound."""
    total = float(sum(counts))
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for k, n in enumerate(counts):
        if n and cumulative + n >= rank:
            if k == N_BOUNDS:
                return BOUNDS[-1]
            lo = 0.0 if k == 0 else BOUNDS[k - 1]
            return lo + (BOUNDS[k] - lo) * max(rank - cumulative, 0.0) / n
        cumulative += n
    return BOUNDS[-1] if counts[-1] else None


def bucket_bounds(value: float) -> tuple[float, float]:
    """The (lower, upper] bounds of the bucket holding `value` (upper is inf for the overflow bucket)."""
    for k, b in enumerate(BOUNDS):
        if value <= b:
            return (0.0 if k == 0 else BOUNDS[k - 1]), b
    return BOUNDS[-1], math.inf


def steps(
    conn: Connection,
    model: str,
    first_s: float,
    step_s: int,
    n: int,
    version: str | None = None,
    columns: Sequence[str] = COLUMNS,
) -> dict[str, list[tuple[Any, ...]]]:
    """Per version: (step index, *columns summed over the step) for the `n` steps of `step_s` seconds from
    `first_s` (a whole minute), only the steps with traffic. Summed in SQL: 30 days are one index range."""
    first_minute = int(first_s // 60)
    step_minutes = max(1, int(step_s // 60))
    where, params = "model = ? AND minute >= ? AND minute < ?", [model, first_minute, first_minute + n * step_minutes]
    if version is not None:
        where += " AND version = ?"
        params.append(version)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"columns: unknown {unknown}; expected some of {list(COLUMNS)}")
    sums = ", ".join(f"sum({c})" for c in columns)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(
        f"SELECT version, (minute - ?) / ? AS k, {sums} FROM traffic_rollup WHERE {where} GROUP BY version, k"
        " ORDER BY version, k",
        [first_minute, step_minutes, *params],
    ):
        out.setdefault(row[0], []).append(row[1:])
    return out


def percentiles(counts: Any, q: float) -> list[float | None]:
    """`percentile` of each row of a (steps, N_BUCKETS) array of histogram counts, vectorised."""
    import numpy as np  # here: the record path never loads numpy

    counts = np.asarray(counts, dtype=np.float64)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    rank = q * total
    k = np.argmax(cumulative >= rank[:, None], axis=1)
    rows = np.arange(len(counts))
    in_bucket = counts[rows, k]
    before = cumulative[rows, k] - in_bucket
    upper = np.array([*BOUNDS, BOUNDS[-1]])
    lower = np.array([0.0, *BOUNDS])
    with np.errstate(invalid="ignore", divide="ignore"):
        value = lower[k] + (upper[k] - lower[k]) * np.clip((rank - before) / in_bucket, 0.0, 1.0)
    value = np.where(k == N_BOUNDS, BOUNDS[-1], value)
    return [None if t <= 0 else v for t, v in zip(total.tolist(), value.tolist(), strict=True)]
