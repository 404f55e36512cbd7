"""The per-minute SLO buckets of `aisre.store.buckets` on PostgreSQL: the same table, the same sums.

Maintained as in SQLite, inside the transactions that change what they count: `PostgresStore.write_batch`
adds the rows above each records spec's ``seq`` mark (`after_records`), `add_labels` subtracts the old
labels' contribution and adds the new (`relabel`); `ensure` registers, rebuilds and catches up a spec.
The spec's SQL is the PostgreSQL rendering of the SLO (`aisre.slo.events.event_spec(slo, "postgresql")`),
stored with ``?`` placeholders and bound here as psycopg's ``%s``.

Why the locks: a PostgreSQL sequence hands out ``seq`` in the order transactions *ask*, not the order they
*commit*. Two writers A (seq 10) and B (seq 11), B committing first, would move a mark to 11 and A's row,
visible later, would never be counted. So every `write_batch` takes the transaction-scoped advisory lock
`RECORDS_LOCK` *before* its inserts get their ``seq`` values and keeps it to its COMMIT: batches that touch
the inference log commit one after the other, each sees every lower ``seq`` already committed, and a mark
is exact. `add_labels` takes `LABELS_LOCK` (a labels spec must not be rebuilt under it); `ensure` takes
both, records first (the order everyone uses, so no deadlock). The cost - concurrent writers' batches
serialised at the database - is measured in docs/store-postgres.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aisre.store.buckets import _VALUES, N_VALUES, STALE_AFTER_S, BucketSpec

log = logging.getLogger("aisre.store")

#: Advisory lock keys (any constants other aisre locks do not use): "aisre-rc" and "aisre-lb" in ASCII.
RECORDS_LOCK = 0x6169737265_7263 & 0x7FFF_FFFF_FFFF_FFFF
LABELS_LOCK = 0x6169737265_6C62 & 0x7FFF_FFFF_FFFF_FFFF
MINUTE = "floor(i.ts / 60)::bigint"
_UPSERT = ", ".join(f"v{k} = slo_buckets.v{k} + excluded.v{k}" for k in range(N_VALUES))

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS slo_bucket_specs (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    sql TEXT NOT NULL,
    hwm BIGINT NOT NULL DEFAULT 0,
    used_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS slo_buckets (
    name TEXT NOT NULL,
    minute BIGINT NOT NULL,
    {", ".join(f"v{k} DOUBLE PRECISION NOT NULL DEFAULT 0" for k in range(N_VALUES))},
    PRIMARY KEY (name, minute)
);
"""


def pg(sql: str) -> str:
    """SQL written with `?` placeholders (the specs' and SQLite's style) for psycopg (`%s`)."""
    return sql.replace("?", "%s")


def lock(conn: Any, key: int) -> None:
    """The transaction-scoped advisory lock `key` (released at COMMIT or ROLLBACK)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


def lost(conn: Any, psycopg: Any, exc: BaseException) -> bool:
    """Whether a failure inside the savepoint lost the connection: then the batch must fail (and be retried).
    Swallowing it would be silent loss: psycopg leaves a transaction on a broken connection without raising."""
    return bool(conn.closed or conn.broken or isinstance(exc, psycopg.OperationalError))


def _max_seq(conn: Any) -> int:
    return int(conn.execute("SELECT max(seq) FROM inferences").fetchone()[0] or 0)


def _add_records(conn: Any, specs: Sequence[BucketSpec], hwm: int, upto: int) -> None:
    """Rows with hwm < seq <= upto counted into every spec of `specs` in one scan, marks moved to `upto`."""
    if not specs or upto <= hwm:
        return
    columns, params = [], []
    for spec in specs:
        sql, p = spec.guarded_sums()
        columns.append(sql)
        params += p
    rows = conn.execute(
        pg(f"SELECT {MINUTE} AS minute, {', '.join(columns)} FROM inferences i WHERE i.seq > ? AND i.seq <= ? ")
        + "GROUP BY 1",
        [*params, hwm, upto],
    ).fetchall()
    at = 1
    with conn.cursor() as cur:
        for spec in specs:
            width = len(spec.values)
            pad = [0.0] * (N_VALUES - width)
            batch = [
                (spec.name, row[0], *[float(v or 0.0) for v in row[at : at + width]], *pad)
                for row in rows
                if any(row[at : at + width])
            ]
            if batch:
                cur.executemany(
                    f"INSERT INTO slo_buckets (name, minute, {_VALUES}) VALUES (%s, %s, {', '.join(['%s'] * N_VALUES)})"
                    f" ON CONFLICT (name, minute) DO UPDATE SET {_UPSERT}",
                    batch,
                )
            at += width
        cur.executemany("UPDATE slo_bucket_specs SET hwm = %s WHERE name = %s", [(upto, s.name) for s in specs])


def _add_labels(conn: Any, spec: BucketSpec, record_ids: Sequence[str] | None, sign: int) -> None:
    # The contribution of the current labels of `record_ids` (all labels when None), times `sign`.
    only = "" if record_ids is None else " AND l.record_id = ANY(%s)"
    sums, params = spec.sums(sign)
    conn.execute(
        pg(
            f"INSERT INTO slo_buckets (name, minute, {_VALUES}) SELECT ?, {MINUTE} AS minute, {sums} "
            f"FROM labels l JOIN inferences i ON i.id = l.record_id WHERE ({spec.where})"
        )
        + only
        + f" GROUP BY 2 ON CONFLICT (name, minute) DO UPDATE SET {_UPSERT}",
        [spec.name, *params, *spec.where_params, *([] if record_ids is None else [list(record_ids)])],
    )


def _specs(conn: Any) -> list[tuple[BucketSpec, int]]:
    rows = conn.execute("SELECT name, sql, hwm FROM slo_bucket_specs").fetchall()
    return [(BucketSpec.from_row(name, sql), int(hwm)) for name, sql, hwm in rows]


def after_records(conn: Any, psycopg: Any) -> None:
    """Inside `write_batch`'s transaction (holding `RECORDS_LOCK`), after its inserts: every records spec
    brought up to date. A failure is rolled back to a savepoint and logged (the records still commit; the
    marks stay behind and `ensure` retries), as in SQLite."""
    groups: dict[int, list[BucketSpec]] = {}
    for spec, hwm in _specs(conn):
        if spec.source == "records":
            groups.setdefault(hwm, []).append(spec)
    if not groups:
        return
    upto = _max_seq(conn)
    for hwm, specs in groups.items():
        try:
            with conn.transaction():  # a savepoint
                _add_records(conn, specs, hwm, upto)
        except psycopg.Error as exc:
            if lost(conn, psycopg, exc):
                raise
            log.warning(
                "SLO buckets of %s not updated by this batch (caught up later): %s", [s.name for s in specs], exc
            )


def label_specs(conn: Any) -> list[BucketSpec]:
    """The labels specs, read inside `add_labels`'s transaction after it took `LABELS_LOCK`."""
    return [s for s, _ in _specs(conn) if s.source == "labels"]


def relabel(conn: Any, specs: Sequence[BucketSpec], record_ids: Sequence[str], sign: int) -> None:
    """Subtract (sign -1, before replacing labels) or add (sign +1, after) these records' labels."""
    for spec in specs:
        _add_labels(conn, spec, record_ids, sign)


def ensure(conn: Any, spec: BucketSpec, now: float | None = None) -> None:
    """Register `spec` (rebuilding its buckets if it is new or changed) and catch it up; as `buckets.ensure`."""
    import time

    now = time.time() if now is None else now
    fp = spec.fingerprint
    row = conn.execute(
        "SELECT fingerprint, hwm, used_at FROM slo_bucket_specs WHERE name = %s", (spec.name,)
    ).fetchone()
    if row is not None and row[0] == fp:
        behind = spec.source == "records" and _max_seq(conn) > row[1]
        if not behind and now - row[2] < STALE_AFTER_S / 7:
            return
    with conn.transaction():
        lock(conn, RECORDS_LOCK)
        lock(conn, LABELS_LOCK)
        stale = [
            r[0] for r in conn.execute("SELECT name FROM slo_bucket_specs WHERE used_at < %s", (now - STALE_AFTER_S,))
        ]
        for name in [n for n in stale if n != spec.name]:
            conn.execute("DELETE FROM slo_bucket_specs WHERE name = %s", (name,))
            conn.execute("DELETE FROM slo_buckets WHERE name = %s", (name,))
        row = conn.execute("SELECT fingerprint FROM slo_bucket_specs WHERE name = %s", (spec.name,)).fetchone()
        if row is None or row[0] != fp:
            conn.execute("DELETE FROM slo_buckets WHERE name = %s", (spec.name,))
            conn.execute(
                "INSERT INTO slo_bucket_specs (name, fingerprint, source, sql, hwm, used_at)"
                " VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint,"
                " source = excluded.source, sql = excluded.sql, hwm = 0, used_at = excluded.used_at",
                (spec.name, fp, spec.source, spec.to_json(), now),
            )
            if spec.source == "labels":
                _add_labels(conn, spec, None, 1)
        else:
            conn.execute("UPDATE slo_bucket_specs SET used_at = %s WHERE name = %s", (now, spec.name))
        if spec.source == "records":
            (hwm,) = conn.execute("SELECT hwm FROM slo_bucket_specs WHERE name = %s", (spec.name,)).fetchone()
            _add_records(conn, [spec], int(hwm), _max_seq(conn))


def read(conn: Any, name: str, first_minute: int, n: int, width: int = 2) -> Any:
    """A (width, n) array of the first `width` sums over minutes [first_minute, first_minute + n); 0 where empty."""
    import numpy as np

    out = np.zeros((width, n))
    cols = ", ".join(f"v{k}" for k in range(width))
    rows = conn.execute(
        f"SELECT minute, {cols} FROM slo_buckets WHERE name = %s AND minute >= %s AND minute < %s",
        (name, first_minute, first_minute + n),
    ).fetchall()
    if rows:
        data = np.array(rows, dtype=np.float64)
        out[:, data[:, 0].astype(np.int64) - first_minute] = data[:, 1:].T
    return out


def ensure_and_read(store: Any, spec: BucketSpec, first_minute: int, n: int) -> Any:
    """What `aisre.slo.events` asks of a `PostgresStore`: the spec registered and caught up, then its sums."""
    with store._errors(f"reading the SLO buckets of {spec.name!r}"):  # noqa: SLF001
        conn = store._connection()  # noqa: SLF001
        ensure(conn, spec)
        return read(conn, spec.name, first_minute, n, len(spec.values))
