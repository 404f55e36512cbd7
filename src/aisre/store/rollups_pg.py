"""The traffic rollup's SQL in PostgreSQL's dialect: the table (migration 20) and the sums over new rows.

`aisre.store.rollups` keeps the rollup on both backends with the same code, bounds, columns and fingerprint; the
statements that differ in more than a word live here. SQLite's are in `rollups` itself.
"""

from __future__ import annotations

from aisre.store.rollups import COLUMNS, N_BUCKETS, _bucket_of

# PostgreSQL: the same table in its types (counts INTEGER, as in SQLite, so that `sum()` over them reads back as
# Python ints - a BIGINT's sum is NUMERIC, a Decimal - and the dashboard's JSON is the same on both backends).
# `TABLE` and `PG_SCHEMA` are migration 20 (`aisre.store.migrations`): recorded by version, never re-run.
_TYPES = ", ".join(
    f"{c} {'DOUBLE PRECISION' if c.endswith(('_sum', 'cost_usd')) else 'INTEGER'} NOT NULL DEFAULT 0" for c in COLUMNS
)
TABLE = f"""
CREATE TABLE IF NOT EXISTS traffic_rollup (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    minute BIGINT NOT NULL,
    {_TYPES},
    PRIMARY KEY (model, version, minute)
)"""
PG_SCHEMA = f"""{TABLE};
CREATE TABLE IF NOT EXISTS traffic_rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    hwm BIGINT NOT NULL,
    bounds TEXT NOT NULL
);
"""

# As `_ROWS`: the body parsed as `json` only when it names the field (`json` and not `jsonb`: it accepts every body
# the store accepts); no `NOT INDEXED` (the planner takes the seq range of the primary key).
_HAS = "strpos(body, '\"{}\"') > 0"
_ROWS = (
    "WITH r AS MATERIALIZED (SELECT model, version, floor(ts / 60)::bigint AS minute,"
    " (status = 'error')::int AS err, (status = 'cancelled')::int AS cncl, (route = 'fallback')::int AS fb,"
    " latency_s AS lat, cost_usd AS cost,"
    f" CASE WHEN {_HAS.format('ttft_s')} THEN (body::json ->> 'ttft_s')::float8 END AS ttft,"
    f" CASE WHEN {_HAS.format('ttft_s')} THEN (body::json ->> 'tpot_s')::float8 END AS tpot,"
    f" CASE WHEN {_HAS.format('input_tokens')} THEN coalesce((body::json ->> 'input_tokens')::float8, 0)"
    " + coalesce((body::json ->> 'output_tokens')::float8, 0) ELSE 0 END AS tok"
    " FROM inferences WHERE seq > ? AND seq <= ?),"
    f" g AS (SELECT model, version, minute, {_bucket_of('lat')} AS lb, {_bucket_of('ttft')} AS tb,"
    f" {_bucket_of('tpot')} AS pb, count(*) AS n, sum(err) AS e, sum(cncl) AS cn, sum(fb) AS f,"
    " count(lat) AS ln, coalesce(sum(lat), 0) AS ls, count(ttft) AS fn, coalesce(sum(ttft), 0) AS fs,"
    " count(tpot) AS pn, coalesce(sum(tpot), 0) AS ps, sum(tok) AS tk, coalesce(sum(cost), 0) AS c"
    " FROM r GROUP BY model, version, minute, lb, tb, pb)"
)
_HIST = ", ".join(
    f"sum(CASE WHEN {col} = {k} THEN n ELSE 0 END)" for col in ("lb", "tb", "pb") for k in range(N_BUCKETS)
)
ADD = (
    f"{_ROWS} INSERT INTO traffic_rollup (model, version, minute, {', '.join(COLUMNS)})"
    " SELECT model, version, minute, sum(n), sum(e), sum(cn), sum(f), sum(ln), sum(ls), sum(fn), sum(fs),"
    f" sum(pn), sum(ps), round(sum(tk)), sum(c), {_HIST} FROM g GROUP BY model, version, minute"
    " ON CONFLICT (model, version, minute) DO UPDATE SET "
    + ", ".join(f"{c} = traffic_rollup.{c} + excluded.{c}" for c in COLUMNS)
)
