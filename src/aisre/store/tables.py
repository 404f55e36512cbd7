"""A feature's own tables in a store's SQLite file (registry, incidents): opened once, written in
`BEGIN IMMEDIATE` transactions so a check and the change it guards are never split by another process."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

from aisre.store.sqlite import SQLiteStore


class StoreTables:
    """The tables of `SCHEMA` in a store (a `SQLiteStore`, or a path / `sqlite:///` URL), created if absent."""

    SCHEMA = ""

    def __init__(self, store: SQLiteStore | str | os.PathLike[str]) -> None:
        self._owns_store = not isinstance(store, SQLiteStore)
        if isinstance(store, str):
            store = store.removeprefix("sqlite:///")
        self.store = store if isinstance(store, SQLiteStore) else SQLiteStore(store)
        conn = self.store._conn()  # noqa: SLF001 - the store's own connection: its file holds these tables
        conn.executescript(self.SCHEMA)
        conn.commit()

    @contextlib.contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (`BEGIN IMMEDIATE`); committed on success, rolled back on error."""
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

    def close(self) -> None:
        """Close the store if these tables opened it (from a path or URL); a store passed in stays open."""
        if self._owns_store:
            self.store.close()
