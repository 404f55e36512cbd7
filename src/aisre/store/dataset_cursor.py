"""Where an incremental export resumes: a sequence-number cursor, or a time cursor for other stores.

SQLite numbers every record (`seq`, an INTEGER PRIMARY KEY that only grows), so "what is new" is
exact: `seq > cursor`. PostgreSQL is exact too (`_SeqPages` on either store): its `seq` comes from an identity
sequence, which alone would not do (a writer can take seq 11 and commit before the one holding seq
10), but every `PostgresStore.write_batch` takes the advisory lock `RECORDS_LOCK` before its inserts
take their `seq`s and holds it to COMMIT, so batches become visible in `seq` order: once a reader sees
seq `n`, every record below `n` that will ever exist is already visible. A store can offer the same by
implementing `iter_seq_records` and `max_seq` (see `SeqReadable`); any other `Store` falls back to a
(ts, ids at that ts) cursor, which misses a record committed later with an older `ts` (a slow writer
on another host): `--until 5m` leaves such stragglers time to land before the cursor passes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from aisre.errors import StoreError
from aisre.records import InferenceRecord
from aisre.store.base import RecordFilter, Store
from aisre.store.codec import COLUMNS, row_to_record
from aisre.store.postgres import PostgresStore
from aisre.store.sqlite import SQLiteStore

Chunk = list[tuple[int | None, InferenceRecord]]


@runtime_checkable
class SeqReadable(Protocol):
    """A store whose records carry a growing sequence number (the exact incremental cursor)."""

    def max_seq(self) -> int: ...

    def iter_seq_records(
        self, after: int, upto: int, since: float | None, chunk_size: int
    ) -> Iterator[list[tuple[int, InferenceRecord]]]: ...


class _SeqPages:
    """`SeqReadable` over a store's `inferences` table: keyset pages on `seq`, one short query per chunk.

    On PostgreSQL `max_seq` is the largest *visible* `seq` (never the identity sequence's last value, which
    counts batches still in flight): with writes committing in `seq` order (the module docstring) nothing at
    or below it can appear later, so a cursor saved there misses nothing. Each page is its own statement
    (autocommit, READ COMMITTED on PostgreSQL): a page sees every record up to `upto`, and no long snapshot
    holds back vacuum (or a SQLite checkpoint) while a big export runs."""

    def __init__(self, fetch: Callable[[str, list[Any]], Any], placeholder: str):
        self._fetch = fetch  # (sql, params) -> rows
        self._p = placeholder

    def max_seq(self) -> int:
        return int(self._fetch("SELECT coalesce(max(seq), 0) FROM inferences", [])[0][0])

    def iter_seq_records(
        self, after: int, upto: int, since: float | None, chunk_size: int
    ) -> Iterator[list[tuple[int, InferenceRecord]]]:
        p = self._p
        cols = ", ".join("i." + c for c in COLUMNS)
        extra = "" if since is None else f" AND i.ts >= {p}"
        sql = f"SELECT i.seq, {cols} FROM inferences i WHERE i.seq > {p} AND i.seq <= {p}{extra}"
        sql += f" ORDER BY i.seq LIMIT {p}"
        while True:
            params: list[Any] = [after, upto] + ([] if since is None else [since]) + [chunk_size]
            rows = self._fetch(sql, params)
            if not rows:
                return
            yield [(int(row[0]), row_to_record(row[1:])) for row in rows]
            after = int(rows[-1][0])


def _seq_reader(store: Store) -> SeqReadable | None:
    """The exact cursor's reader for `store`, or None (the time cursor)."""
    if isinstance(store, SQLiteStore):
        sqlite = store
        return _SeqPages(lambda sql, params: sqlite._conn().execute(sql, params).fetchall(), "?")
    if isinstance(store, PostgresStore):
        pg = store
        return _SeqPages(lambda sql, params: pg._fetch("reading records to export", sql, params), "%s")
    if isinstance(store, SeqReadable):
        return store
    return None


def store_key(store: Store) -> str:
    """The name a store's cursor is kept under in the state file."""
    if isinstance(store, SQLiteStore):
        return f"sqlite:///{store.path.resolve()}"
    return str(getattr(store, "url", None) or type(store).__name__)


class Cursor:
    """Reads what is new since the saved cursor, in chunks, and knows the cursor to save afterwards."""

    def __init__(self, store: Store, saved: dict[str, Any], since: float | None, until: float | None):
        self.store = store
        self.since = since
        self.until = until
        self.seq_reader = _seq_reader(store)
        self.saved = dict(saved)
        self.next: dict[str, Any] = dict(saved)
        self.upto = 0
        if self.seq_reader is not None:
            self.after = int(saved.get("seq", 0))
            self.upto = self.seq_reader.max_seq()
            if self.upto < self.after:
                raise StoreError(
                    f"store {store_key(store)} ends at record #{self.upto} but this dataset already holds records up"
                    f" to #{self.after}: it is not the store this dataset was exported from (replaced or restored?)"
                )

    def pending(self) -> int:
        """About how many records this run will read (for the progress bar)."""
        if self.seq_reader is not None:
            return self.upto - self.after
        since = self._since_ts()
        return self.store.count(RecordFilter(since=since, until=self.until))

    def _since_ts(self) -> float | None:
        ts = self.saved.get("ts")
        if ts is None:
            return self.since
        return ts if self.since is None else max(ts, self.since)

    def chunks(self, chunk_size: int) -> Iterator[Chunk]:
        if self.seq_reader is not None:
            yield from self._seq_chunks(self.seq_reader, chunk_size)
        else:
            yield from self._ts_chunks(chunk_size)

    def _seq_chunks(self, reader: SeqReadable, chunk_size: int) -> Iterator[Chunk]:
        # `--until` stops the scan at the first record (in seq order) that is too new, so the cursor never
        # passes a record that has not been exported: it waits for the next run.
        self.next = {"seq": self.upto}
        since, skip = self.since, lambda r: False
        if "seq" not in self.saved and self.saved.get("ts") is not None:
            # A time cursor saved before this store had the exact one (PostgreSQL before issue #12's (f)): this
            # run takes what the time cursor would (ts after it, or at it and not yet exported) from the whole
            # seq range, once, and saves a seq cursor; a later straggler older than the time cursor was lost then.
            saved_ts, seen = self.saved["ts"], set(self.saved.get("ids", []))
            since = self._since_ts()
            skip = lambda r: r.ts == saved_ts and r.id in seen  # noqa: E731
        for page in reader.iter_seq_records(self.after, self.upto, since, chunk_size):
            page = [(seq, r) for seq, r in page if not skip(r)]
            if not page:
                continue
            if self.until is not None:
                cut = next((i for i, (_, r) in enumerate(page) if r.ts >= self.until), None)
                if cut is not None:
                    self.next = {"seq": page[cut][0] - 1}
                    if cut:
                        yield list(page[:cut])
                    return
            yield list(page)

    def _ts_chunks(self, chunk_size: int) -> Iterator[Chunk]:
        saved_ts = last_ts = self.saved.get("ts")
        seen = set(self.saved.get("ids", []))
        ids_at_last: list[str] = list(seen)
        for page in self.store.iter_records(RecordFilter(since=self._since_ts(), until=self.until), chunk_size):
            fresh = [r for r in page if not (r.ts == saved_ts and r.id in seen)]
            for r in fresh:
                if r.ts != last_ts:
                    last_ts, ids_at_last = r.ts, []
                ids_at_last.append(r.id)
            if fresh:
                yield [(None, r) for r in fresh]
        self.next = {"ts": last_ts, "ids": ids_at_last} if last_ts is not None else dict(self.saved)
