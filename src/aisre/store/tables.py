"""A feature's own tables in a store (registry, incidents, evaluations), on SQLite or PostgreSQL.

The dialect seam: feature code writes one query with `?` placeholders and runs it through `conn()` or
`immediate()`; on PostgreSQL that is a `PgConnection` (`aisre.store.postgres_conn`, the one adapter: `%s`
placeholders, pooled connections checked on checkout), so no query is written twice. `immediate()` is the
write transaction that makes a check and the change it guards atomic across processes: SQLite's
`BEGIN IMMEDIATE` (one writer for the whole file); on PostgreSQL a transaction whose first statement takes
`pg_advisory_xact_lock` on the feature's key (one writer per feature, released at COMMIT or ROLLBACK;
docs/decisions.md says why not SERIALIZABLE).

SQLite creates the tables on open (`SCHEMA`, `IF NOT EXISTS`, as always); PostgreSQL's are migrations
30-39 (`aisre.store.migrations_tables`), applied when the `PostgresStore` opens.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aisre.errors import StoreError
from aisre.store.postgres_conn import PgConnection, translate
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.store.postgres import PostgresStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _is_postgres(store: object) -> bool:
    if isinstance(store, str):
        return store.startswith(_POSTGRES_SCHEMES)
    from aisre.store.postgres import PostgresStore  # no psycopg import: the store imports it when opened

    return isinstance(store, PostgresStore)


class StoreTables:
    """The tables of `SCHEMA` (SQLite) / `FEATURE`'s migrations (PostgreSQL) in a store: a `SQLiteStore`, a
    `PostgresStore`, a path, or a `sqlite:///` / `postgresql://` URL (a store opened here is closed by `close`).
    """

    SCHEMA = ""
    FEATURE = "tables"  # names the PostgreSQL advisory lock and error messages

    def __init__(self, store: SQLiteStore | PostgresStore | str | os.PathLike[str]) -> None:
        self.dialect = "postgresql" if _is_postgres(store) else "sqlite"
        # A store object passed in stays the caller's; one opened here from a path or URL is closed by `close`.
        self._owns_store = isinstance(store, str) or not (
            isinstance(store, SQLiteStore) or self.dialect == "postgresql"
        )
        self.store: SQLiteStore | PostgresStore
        if self.dialect == "postgresql":
            if isinstance(store, str):
                from aisre.store.postgres import PostgresStore

                store = PostgresStore(store)  # its migrations create these tables
            self.store = store  # type: ignore[assignment]
            self.integrity_errors: tuple[type[BaseException], ...] = (self.store._psycopg.IntegrityError,)  # type: ignore[union-attr]  # noqa: SLF001
            return
        if isinstance(store, str):
            store = store.removeprefix("sqlite:///")
        self.store = store if isinstance(store, SQLiteStore) else SQLiteStore(store)
        self.integrity_errors = (sqlite3.IntegrityError,)
        try:
            conn = self.store._conn()  # noqa: SLF001 - the store's own connection: its file holds these tables
            conn.executescript(self.SCHEMA)
            conn.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot create the {self.FEATURE} tables in {self.store.path}: {exc}") from None

    def conn(self) -> Any:
        """A connection for reads outside a write transaction (each statement sees a consistent snapshot): this
        thread's `sqlite3.Connection`, or a pooled `PgConnection` (each statement on a checked connection, re-run
        once on a new one if the server had just closed it); both take `?` placeholders."""
        if self.dialect == "sqlite":
            return self.store._conn()  # noqa: SLF001
        return PgConnection(self.store, doing=f"reading the {self.FEATURE} tables")

    @contextlib.contextmanager
    def immediate(self) -> Iterator[Any]:
        """A write transaction that holds the feature's write lock from its first statement (SQLite
        `BEGIN IMMEDIATE`, PostgreSQL `pg_advisory_xact_lock`); committed on success, rolled back on error."""
        if self.dialect == "postgresql":
            with self._pg_transaction() as pg:
                yield pg
            return
        conn = self.store._conn()  # noqa: SLF001
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    @contextlib.contextmanager
    def _pg_transaction(self) -> Iterator[PgConnection]:
        # On a pooled connection checked on checkout (a database restart since the last call costs nothing);
        # psycopg's errors as StoreErrors, but integrity errors stay what they are, for `integrity_errors`.
        store: Any = self.store
        doing = f"a {self.FEATURE} transaction"
        with (
            translate(doing, store.url, store._psycopg, keep=self.integrity_errors),  # noqa: SLF001
            store._readers.connection(doing) as raw,  # noqa: SLF001
            raw.transaction(),
        ):
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(self.FEATURE),))
            yield PgConnection(store, raw)

    def close(self) -> None:
        """Close the store if these tables opened it (from a path or URL); a store passed in stays open."""
        if self._owns_store:
            self.store.close()


def advisory_key(feature: str) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) of a feature's write transactions."""
    digest = hashlib.blake2b(f"aisre:{feature}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
