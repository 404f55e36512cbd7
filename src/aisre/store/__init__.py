"""Where records live: the SQLite or PostgreSQL inference log, the batching writer, sinks and export."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aisre.errors import StoreError
from aisre.store.base import RecordFilter, Sink, Store
from aisre.store.export import export_parquet
from aisre.store.jsonl import JsonlSink
from aisre.store.sqlite import SQLiteStore
from aisre.store.writer import BatchingWriter, WriterStats

if TYPE_CHECKING:
    from aisre.store.postgres import PostgresStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(url: str, retention_days: float | None = None, pool_size: int = 8) -> SQLiteStore | PostgresStore:
    """Open (creating tables if needed) the store a URL names: `sqlite:///PATH` or
    `postgresql://user[:password]@host[:port]/db` (needs `aisre[postgres]`; `pool_size` bounds its readers'
    connection pool, unused by SQLite)."""
    if isinstance(url, str) and url.startswith(_POSTGRES_SCHEMES):
        from aisre.store.postgres import PostgresStore  # psycopg is imported only for a PostgreSQL store

        return PostgresStore(url, retention_days=retention_days, pool_size=pool_size)
    if not isinstance(url, str) or not url.startswith("sqlite:///") or url == "sqlite:///":
        raise StoreError(f"store URL: expected 'sqlite:///PATH' or 'postgresql://user@host:port/db', got {url!r}")
    return SQLiteStore(url[len("sqlite:///") :], retention_days=retention_days)


__all__ = [
    "BatchingWriter",
    "JsonlSink",
    "RecordFilter",
    "SQLiteStore",
    "Sink",
    "Store",
    "StoreError",
    "WriterStats",
    "export_parquet",
    "open_store",
]
