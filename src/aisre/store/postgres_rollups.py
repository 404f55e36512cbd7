"""The dashboard's per-minute traffic rollup (`aisre.store.rollups`) on PostgreSQL: the same table, the same sums.

Kept as in SQLite: every `PostgresStore.write_batch`, after its inserts and in the same transaction (holding
`postgres_buckets.RECORDS_LOCK`, taken before the inserts: see that module for why a ``seq`` mark needs it),
adds the rows above the mark in `traffic_rollup_state` with one ``INSERT ... SELECT ... GROUP BY ... ON
CONFLICT DO UPDATE`` and moves the mark. The histogram bounds, columns and fingerprint are `rollups`'; the
readers (`rollups.read`, `steps`, `models`) run unchanged through `QmarkConnection`.

Counts are INTEGER columns, as in SQLite, so that ``sum()`` over them reads back as Python ints (a BIGINT's
sum is NUMERIC, a Decimal) and the dashboard's JSON is the same on both backends.
"""

from __future__ import annotations

import logging
from typing import Any

from aisre.store.postgres_buckets import RECORDS_LOCK, lock, lost
from aisre.store.rollups import _FINGERPRINT, CHUNK_ROWS, COLUMNS, HISTOGRAMS, N_BUCKETS, _bucket_of

log = logging.getLogger("aisre.store")

_TYPES = ", ".join(
    f"{c} {'DOUBLE PRECISION' if c.endswith(('_sum', 'cost_usd')) else 'INTEGER'} NOT NULL DEFAULT 0" for c in COLUMNS
)
_TABLE = f"""
CREATE TABLE IF NOT EXISTS traffic_rollup (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    minute BIGINT NOT NULL,
    {_TYPES},
    PRIMARY KEY (model, version, minute)
)"""
SCHEMA = f"""{_TABLE};
CREATE TABLE IF NOT EXISTS traffic_rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    hwm BIGINT NOT NULL,
    bounds TEXT NOT NULL
);
"""

# As rollups._ROWS: one projection per row (the body parsed as `json` only when it names the field; `json`
# and not `jsonb`: it accepts every body the store accepts), then counts per (minute, bucket triple).
_HAS = "strpos(body, '\"{}\"') > 0"
_ROWS = (
    "WITH r AS MATERIALIZED (SELECT model, version, floor(ts / 60)::bigint AS minute,"
    " (status = 'error')::int AS err, (status = 'cancelled')::int AS cncl, (route = 'fallback')::int AS fb,"
    " latency_s AS lat, cost_usd AS cost,"
    f" CASE WHEN {_HAS.format('ttft_s')} THEN (body::json ->> 'ttft_s')::float8 END AS ttft,"
    f" CASE WHEN {_HAS.format('ttft_s')} THEN (body::json ->> 'tpot_s')::float8 END AS tpot,"
    f" CASE WHEN {_HAS.format('input_tokens')} THEN coalesce((body::json ->> 'input_tokens')::float8, 0)"
    " + coalesce((body::json ->> 'output_tokens')::float8, 0) ELSE 0 END AS tok"
    " FROM inferences WHERE seq > %s AND seq <= %s),"
    f" g AS (SELECT model, version, minute, {_bucket_of('lat')} AS lb, {_bucket_of('ttft')} AS tb,"
    f" {_bucket_of('tpot')} AS pb, count(*) AS n, sum(err) AS e, sum(cncl) AS cn, sum(fb) AS f,"
    " count(lat) AS ln, coalesce(sum(lat), 0) AS ls, count(ttft) AS fn, coalesce(sum(ttft), 0) AS fs,"
    " count(tpot) AS pn, coalesce(sum(tpot), 0) AS ps, sum(tok) AS tk, coalesce(sum(cost), 0) AS c"
    " FROM r GROUP BY model, version, minute, lb, tb, pb)"
)
_HIST = ", ".join(
    f"sum(CASE WHEN {col} = {k} THEN n ELSE 0 END)" for col in ("lb", "tb", "pb") for k in range(N_BUCKETS)
)
assert len(HISTOGRAMS) == 3
_ADD = (
    f"{_ROWS} INSERT INTO traffic_rollup (model, version, minute, {', '.join(COLUMNS)})"
    " SELECT model, version, minute, sum(n), sum(e), sum(cn), sum(f), sum(ln), sum(ls), sum(fn), sum(fs),"
    f" sum(pn), sum(ps), round(sum(tk)), sum(c), {_HIST} FROM g GROUP BY model, version, minute"
    " ON CONFLICT (model, version, minute) DO UPDATE SET "
    + ", ".join(f"{c} = traffic_rollup.{c} + excluded.{c}" for c in COLUMNS)
)


def _add(conn: Any, hwm: int, upto: int) -> None:
    if upto > hwm:
        conn.execute(_ADD, (hwm, upto))
    conn.execute(
        "INSERT INTO traffic_rollup_state (id, hwm, bounds) VALUES (0, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET hwm = excluded.hwm, bounds = excluded.bounds",
        (upto, _FINGERPRINT),
    )


def _catch_up(conn: Any) -> bool:
    """Add the rows above the mark (at most CHUNK_ROWS of them); True when nothing is left behind."""
    row = conn.execute("SELECT hwm, bounds FROM traffic_rollup_state WHERE id = 0").fetchone()
    upto = int(conn.execute("SELECT max(seq) FROM inferences").fetchone()[0] or 0)
    hwm = 0
    if row is None or row[1] != _FINGERPRINT:  # none yet, or built by another version: rebuilt from the records
        conn.execute("DROP TABLE IF EXISTS traffic_rollup")
        conn.execute(_TABLE)
    else:
        hwm = int(row[0])
        if upto <= hwm:
            return True
    end = min(upto, hwm + CHUNK_ROWS)
    _add(conn, hwm, end)
    return end == upto


def after_records(conn: Any, psycopg: Any) -> None:
    """Inside `write_batch`'s transaction (holding RECORDS_LOCK), after its inserts: every row above the mark
    counted. A failure is rolled back to a savepoint and logged; the mark stays behind, a later batch retries."""
    try:
        with conn.transaction():  # a savepoint
            _catch_up(conn)
    except psycopg.Error as exc:
        if lost(conn, psycopg, exc):
            raise
        log.warning("traffic rollup not updated by this batch (caught up later): %s", exc)


def catch_up(conn: Any) -> None:
    """At store open: the rollup of rows written before it existed, in transactions of at most CHUNK_ROWS
    rows under RECORDS_LOCK. Two reads and no lock when nothing is behind."""
    row = conn.execute("SELECT hwm, bounds FROM traffic_rollup_state WHERE id = 0").fetchone()
    upto = int(conn.execute("SELECT max(seq) FROM inferences").fetchone()[0] or 0)
    if row is not None and row[1] == _FINGERPRINT and int(row[0]) >= upto:
        return
    done = False
    while not done:
        with conn.transaction():
            lock(conn, RECORDS_LOCK)
            done = _catch_up(conn)


class QmarkConnection:
    """A PostgresStore seen as the `sqlite3`-style connection the rollup readers take: `execute(sql, params)`
    with `?` placeholders, returning a cursor (fetchone, fetchall, iteration). Read-only queries only."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def execute(self, sql: str, params: Any = ()) -> Any:
        with self._store._errors("reading the traffic rollup"):  # noqa: SLF001
            return self._store._connection().execute(sql.replace("?", "%s"), list(params))  # noqa: SLF001
