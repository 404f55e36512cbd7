"""The SQL dialect seam of the SLO buckets and the traffic rollup: what differs between SQLite and PostgreSQL.

`aisre.store.buckets` and `aisre.store.rollups` write their logic once and take a `sqlite3.Connection` or a
bound `postgres_conn.PgConnection` (both with `?` placeholders); `dialect_of(conn)` gives the few things that
differ: the minute of a record's `ts`, SQLite's `NOT INDEXED` hint, a savepoint, which errors a savepoint may
swallow, and the exclusive write transaction.

Why the locks differ: SQLite has one writer per file, so `BEGIN IMMEDIATE` orders every writer. A PostgreSQL
sequence hands out ``seq`` in the order transactions *ask*, not the order they *commit*: writers A (seq 10) and
B (seq 11), B committing first, would move a mark to 11 and A's row, visible later, would never be counted. So
every `PostgresStore.write_batch` takes the transaction-scoped advisory lock `RECORDS_LOCK` *before* its rows get
their ``seq`` values and keeps it to COMMIT: batches that touch the inference log commit one after the other, each
sees every lower ``seq`` committed, and a mark is exact. `add_labels` takes `LABELS_LOCK` (a labels spec must not
be rebuilt under it); `ensure` takes both, records first (the order everyone uses, so no deadlock).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

#: Advisory lock keys (any constants other aisre locks do not use): "aisre-rc" and "aisre-lb" in ASCII.
RECORDS_LOCK = 0x6169737265_7263 & 0x7FFF_FFFF_FFFF_FFFF
LABELS_LOCK = 0x6169737265_6C62 & 0x7FFF_FFFF_FFFF_FFFF
_LOCKS = {"records": RECORDS_LOCK, "labels": LABELS_LOCK}


def lock(conn: Any, key: int) -> None:
    """The PostgreSQL transaction-scoped advisory lock `key` (released at COMMIT or ROLLBACK)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


class SQLite:
    name = "sqlite"
    minute = "CAST(i.ts / 60 AS INTEGER)"
    not_indexed = " NOT INDEXED"  # the seq (rowid) range, never an index scan over the model's history
    label_join = "CROSS JOIN"  # SQLite's planner keeps the labels (the few ids asked for) as the outer loop

    @staticmethod
    @contextlib.contextmanager
    def savepoint(conn: Any, name: str) -> Iterator[None]:
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")

    @staticmethod
    def swallowable(conn: Any, exc: BaseException) -> bool:
        """Whether a failure inside a savepoint may be logged and the outer transaction go on."""
        return isinstance(exc, sqlite3.Error)

    @staticmethod
    @contextlib.contextmanager
    def exclusive(conn: Any, *locks: str) -> Iterator[None]:
        """One writer for the whole file from the first statement (`locks` are PostgreSQL's business)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class PostgreSQL:
    name = "postgresql"
    minute = "floor(i.ts / 60)::bigint"
    not_indexed = ""
    label_join = "JOIN"

    @staticmethod
    def savepoint(conn: Any, name: str) -> contextlib.AbstractContextManager[Any]:
        return conn.transaction()  # nested in write_batch's transaction: a savepoint

    @staticmethod
    def swallowable(conn: Any, exc: BaseException) -> bool:
        # Never when the connection is lost: psycopg leaves a transaction on a broken connection without raising,
        # so swallowing that would be silent loss; the batch must fail (and be retried).
        from aisre.store.postgres_conn import lost

        return isinstance(exc, conn.psycopg.Error) and not lost(conn.raw, exc, conn.psycopg)

    @staticmethod
    @contextlib.contextmanager
    def exclusive(conn: Any, *locks: str) -> Iterator[None]:
        """A transaction holding the advisory locks named (`"records"`, `"labels"`, in that order) from its start."""
        with conn.transaction():
            for name in locks:
                lock(conn.raw, _LOCKS[name])
            yield


Dialect = type[SQLite] | type[PostgreSQL]


def dialect_of(conn: Any) -> Dialect:
    """The dialect of a `sqlite3.Connection` or a bound `PgConnection`."""
    return SQLite if isinstance(conn, sqlite3.Connection) else PostgreSQL
