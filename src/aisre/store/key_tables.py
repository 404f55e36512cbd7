"""Where `KeyStore` keeps the `api_keys` table: the SQL dialect seam between a SQLite file and PostgreSQL.

`KeyStore` (store/keys.py) holds every rule (the keyed hash, the constant-time compare, revocation,
the option checks) and speaks through a `KeyTable`: `one`/`rows` read, `insert` adds a key and says
which unique rule a clash broke, `transaction` runs a revocation's statements atomically. The SQL is
written once with `?` placeholders; the PostgreSQL table runs it through `PgConnection`, the store's one
adapter (`aisre.store.postgres_conn`). SQLite creates
its table on first use, as it always did; PostgreSQL gets it from migration 10 (store/migrations.py),
applied when the store opens, so many hosts starting at once never race to create it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from aisre.store.postgres_conn import PgConnection
from aisre.store.sqlite import SQLiteStore

Execute = Callable[..., Any]  # (sql, params) -> a cursor with fetchone()
Clash = Literal["name", "id"] | None

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    models TEXT,
    rpm INTEGER,
    tpm INTEGER,
    max_concurrent INTEGER,
    budget_usd REAL,
    budget_period TEXT,
    expires_at REAL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
"""


class KeyTable(Protocol):
    """What `KeyStore` needs of a database."""

    #: Where the server secret file sits when the environment variable is unset (None: a server has no
    #: file every host shares, so the variable is required).
    secret_file: Path | None

    def one(self, sql: str, params: tuple = ()) -> tuple | None: ...
    def rows(self, sql: str, params: tuple = ()) -> list[tuple]: ...
    def insert(self, sql: str, row: tuple) -> Clash: ...
    def transaction(self) -> contextlib.AbstractContextManager[Execute]: ...


class SQLiteKeyTable:
    """`api_keys` in the SQLite file, through the store's per-thread connection (as before the seam)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.secret_file: Path | None = store.path.with_name(store.path.name + ".key-secret")
        conn = store._conn()
        conn.executescript(SQLITE_SCHEMA)
        conn.commit()

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self.store._conn().execute(sql, params).fetchone()

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.store._conn().execute(sql, params).fetchall()

    def insert(self, sql: str, row: tuple) -> Clash:
        conn = self.store._conn()
        try:
            with conn:
                conn.execute(sql, row)
        except sqlite3.IntegrityError as exc:
            return "name" if "api_keys.name" in str(exc) else "id"
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Execute]:
        conn = self.store._conn()
        with conn:
            yield conn.execute


class PostgresKeyTable:
    """`api_keys` in the PostgreSQL database of a `PostgresStore`, through its pool (`PgConnection`: `?`
    placeholders, connections checked on checkout); every database error is the store's `StoreError`."""

    secret_file: Path | None = None

    def __init__(self, store: Any) -> None:
        self.store = store

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        return PgConnection(self.store, doing="reading an API key").execute(sql, params).fetchone()

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return PgConnection(self.store, doing="listing API keys").execute(sql, params).fetchall()

    def insert(self, sql: str, row: tuple) -> Clash:
        unique = self.store._psycopg.errors.UniqueViolation
        with self.store.session("creating an API key") as conn:
            try:
                with conn.transaction():
                    PgConnection(self.store, conn).execute(sql, row)
            except unique as exc:
                return "name" if exc.diag.constraint_name == "api_keys_live_name" else "id"
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Execute]:
        with self.store.session("revoking an API key") as conn, conn.transaction():
            yield PgConnection(self.store, conn).execute


def key_table(store: Any) -> SQLiteKeyTable | PostgresKeyTable:
    """The `api_keys` table of `store` (a SQLiteStore or a PostgresStore)."""
    from aisre.store.postgres import PostgresStore

    return PostgresKeyTable(store) if isinstance(store, PostgresStore) else SQLiteKeyTable(store)
