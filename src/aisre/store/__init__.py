"""Where records live: the SQLite inference log, the batching writer, sinks and export."""

from __future__ import annotations

from aisre.errors import StoreError
from aisre.store.base import RecordFilter, Sink, Store
from aisre.store.export import export_parquet
from aisre.store.jsonl import JsonlSink
from aisre.store.sqlite import SQLiteStore
from aisre.store.writer import BatchingWriter, WriterStats


def open_store(url: str, retention_days: float | None = None) -> SQLiteStore:
    """Open (creating if needed) the store a URL names: `sqlite:///PATH`."""
    if not isinstance(url, str) or not url.startswith("sqlite:///") or url == "sqlite:///":
        raise StoreError(f"store URL: expected 'sqlite:///PATH', got {url!r}")
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
