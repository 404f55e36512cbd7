"""SQLite (WAL) store: the append-only inference log and the label table in one file."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path

from aisre.errors import StoreError, UnknownRecordError
from aisre.records import InferenceRecord, Label, Signal
from aisre.store import buckets, migrations, ranges, rollups
from aisre.store.base import RecordFilter
from aisre.store.codec import (
    COLUMNS,
    dumps,
    label_to_row,
    loads,
    record_to_row,
    row_to_record,
    rows_to_signals,
    signals_query,
)

SCHEMA_VERSION = migrations.LATEST  # the inference log's tables: aisre.store.migrations
_INSERT = f"INSERT OR IGNORE INTO inferences ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
ROWS_PER_INSERT = 100
_INSERT_CHUNK = f"INSERT OR IGNORE INTO inferences ({', '.join(COLUMNS)}) VALUES " + ",".join(
    [f"({', '.join('?' * len(COLUMNS))})"] * ROWS_PER_INSERT
)
_SELECT = f"SELECT {', '.join('i.' + c for c in COLUMNS)} FROM inferences i"


class SQLiteStore:
    """One SQLite file in WAL mode; safe to use from many threads and processes.

    Each thread gets its own connection. Writes come from the batching writer in large
    transactions; `durable` batches are committed with synchronous=FULL (survive power
    loss), others with synchronous=NORMAL (survive a process crash).
    """

    def __init__(self, path: str | os.PathLike[str], retention_days: float | None = None):
        self.path = Path(path)
        self.retention_days = retention_days
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"cannot create store {self.path}: directory {self.path.parent} does not exist")
        try:
            conn = self._conn()
            migrations.apply_sqlite(conn, str(self.path))  # versioned, under BEGIN IMMEDIATE
            conn.executescript(buckets.SCHEMA + rollups.SCHEMA)
            conn.commit()
            rollups.catch_up(conn)  # the traffic rollup of rows written before it existed, once
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Checkpoint the WAL every ~40 MB rather than 4 MB: fewer fsyncs at high ingest.
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            self._local.conn = conn
            self._local.sync = "NORMAL"
            with self._all_lock:
                self._all.append(conn)
        return conn

    # -- writes -------------------------------------------------------------------------
    def write_batch(self, records: Sequence[InferenceRecord], durable: bool = False) -> None:
        conn = self._conn()
        wanted = "FULL" if durable else "NORMAL"
        if self._local.sync != wanted:
            conn.execute(f"PRAGMA synchronous={wanted}")
            self._local.sync = wanted
        rows = [record_to_row(r) for r in records]
        with conn:
            # Many rows per statement: one sqlite3_step (one GIL release and re-acquire) per
            # chunk instead of per row, so the writer thread barely disturbs the event loop.
            full = len(rows) - len(rows) % ROWS_PER_INSERT
            for start in range(0, full, ROWS_PER_INSERT):
                conn.execute(_INSERT_CHUNK, list(chain.from_iterable(rows[start : start + ROWS_PER_INSERT])))
            if full < len(rows):
                conn.executemany(_INSERT, rows[full:])
            buckets.after_records(conn)  # the SLO minute buckets, in the same transaction
            rollups.after_records(conn, records)  # the dashboard's per-minute traffic rollup, likewise

    def add_labels(self, labels: Sequence[Label]) -> None:
        """Attach ground truth; all-or-nothing: unknown record ids reject the whole call."""
        if not labels:
            return
        missing = self.missing_ids([label.record_id for label in labels])
        if missing:
            raise UnknownRecordError(missing)
        conn = self._conn()
        ids = list(dict.fromkeys(label.record_id for label in labels))
        with conn:
            conn.execute("BEGIN IMMEDIATE")  # the SLO buckets' specs must not change under this transaction
            specs = buckets.label_specs(conn)
            buckets.relabel(conn, specs, ids, -1)  # what the labels being replaced had counted
            conn.executemany(
                "INSERT OR REPLACE INTO labels (record_id, ts, value) VALUES (?, ?, ?)",
                [label_to_row(label) for label in labels],
            )
            buckets.relabel(conn, specs, ids, +1)

    def write_signals(self, signals: Sequence[Signal], ts: float) -> None:
        """Append monitoring signals computed at time `ts` (epoch seconds)."""
        conn = self._conn()
        with conn:
            conn.executemany(
                "INSERT INTO signals (ts, model, version, name, labels, window_start, window_end,"
                " value, threshold, breached) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        ts,
                        s.model,
                        s.version,
                        s.name,
                        dumps(dict(sorted(s.labels.items()))),
                        s.window_start,
                        s.window_end,
                        s.value,
                        s.threshold,
                        int(s.breached),
                    )
                    for s in signals
                ],
            )

    def signals(
        self,
        model: str | None = None,
        name: str | None = None,
        since: float | None = None,
        version: str | None = None,
    ) -> list[tuple[float, Signal]]:
        """Stored signals as (computed_at, signal), oldest first."""
        sql, params = signals_query("?", model, name, since, version)
        return rows_to_signals(self._conn().execute(sql, params).fetchall())

    def prune(self, older_than: float, chunk: int = 20_000) -> int:
        """Delete records (and their labels) with ts < older_than; returns how many.

        Works in chunks of short transactions so writers are never held off for long.
        Rows are stored roughly in time order, so each chunk's scan stops early.
        """
        conn = self._conn()
        deleted = 0
        while True:
            with conn:
                seqs = [
                    row[0]
                    for row in conn.execute("SELECT seq FROM inferences WHERE ts < ? LIMIT ?", (older_than, chunk))
                ]
                if not seqs:
                    return deleted
                marks = ",".join("?" * len(seqs))
                conn.execute(
                    f"DELETE FROM labels WHERE record_id IN (SELECT id FROM inferences WHERE seq IN ({marks}))",
                    seqs,
                )
                conn.execute(f"DELETE FROM inferences WHERE seq IN ({marks})", seqs)
            deleted += len(seqs)

    def maintain(self, now: float) -> None:
        """Periodic upkeep from the writer thread: apply retention."""
        if self.retention_days is not None:
            self.prune(now - self.retention_days * 86_400)

    # -- reads --------------------------------------------------------------------------
    def get(self, record_id: str) -> InferenceRecord | None:
        row = self._conn().execute(f"{_SELECT} WHERE i.id = ?", (record_id,)).fetchone()
        return None if row is None else row_to_record(row)

    def missing_ids(self, record_ids: Sequence[str]) -> list[str]:
        wanted = list(dict.fromkeys(record_ids))
        found: set[str] = set()
        conn = self._conn()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in conn.execute(f"SELECT id FROM inferences WHERE id IN ({marks})", chunk))
        return [i for i in wanted if i not in found]

    def labels_for(self, record_ids: Sequence[str]) -> dict[str, Label]:
        """The labels of the given records that have one, by record id."""
        out: dict[str, Label] = {}
        conn = self._conn()
        for start in range(0, len(record_ids), 500):
            chunk = list(record_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for rid, ts, value in conn.execute(
                f"SELECT record_id, ts, value FROM labels WHERE record_id IN ({marks})", chunk
            ):
                out[rid] = Label(rid, loads(value), ts)
        return out

    def records(
        self,
        where: RecordFilter = RecordFilter(),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[InferenceRecord]:
        clause, params = where.where_clause()
        order = "DESC" if newest_first else "ASC"
        sql = f"{_SELECT}{clause} ORDER BY i.ts {order}, i.seq {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [row_to_record(r) for r in self._conn().execute(sql, params)]

    def iter_records(
        self, where: RecordFilter = RecordFilter(), chunk_size: int = 10_000
    ) -> Iterator[list[InferenceRecord]]:
        clause, params = where.where_clause()
        cur = self._conn().execute(f"{_SELECT}{clause} ORDER BY i.ts, i.seq", params)
        while rows := cur.fetchmany(chunk_size):
            yield [row_to_record(r) for r in rows]

    def labeled_records(
        self, where: RecordFilter = RecordFilter(), only_labeled: bool = True
    ) -> list[tuple[InferenceRecord, Label | None]]:
        clause, params = where.where_clause()
        join = "JOIN" if only_labeled else "LEFT JOIN"
        sql = (
            f"SELECT {', '.join('i.' + c for c in COLUMNS)}, l.ts, l.value, l.record_id "
            f"FROM inferences i {join} labels l ON l.record_id = i.id{clause} "
            "ORDER BY i.ts, i.seq"
        )
        out = []
        n = len(COLUMNS)
        for row in self._conn().execute(sql, params):
            record = row_to_record(row[:n])
            label = None if row[n + 2] is None else Label(row[n + 2], loads(row[n + 1]), row[n])
            out.append((record, label))
        return out

    def count(self, where: RecordFilter = RecordFilter()) -> int:
        clause, params = where.where_clause()
        sql = f"SELECT count(*) FROM inferences i{clause}"
        return self._conn().execute(sql, params).fetchone()[0]

    def model_versions(self) -> list[tuple[str, str, int]]:
        """(model, version, records) of everything stored, sorted; read from the (model, version, ts) index."""
        sql = "SELECT model, version, count(*) FROM inferences GROUP BY model, version ORDER BY model, version"
        return [(m, v, n) for m, v, n in self._conn().execute(sql)]

    # -- index-range reads of a window (monitoring jobs; see aisre.store.ranges) ---------------
    def versions_between(self, model: str, since: float | None = None, until: float | None = None) -> list[str]:
        """The versions of `model` with a record in `[since, until)`, sorted (a skip scan of the index)."""
        return ranges.versions(self._conn(), model, since, until)

    def indexed_count(self, where: RecordFilter = RecordFilter()) -> int:
        """`count(where)`, read as one index range per version: fast for a model's window without a version."""
        return ranges.count(self._conn(), where)

    def body_lines(self, where: RecordFilter = RecordFilter()) -> bytes:
        """The JSON body of each record `where` selects, one per line, in the order of `records(where)`:
        what `row_to_record` reads `inputs`, `prediction`, `scores`... from, for readers that want columns
        rather than `InferenceRecord`s (the monitoring jobs read 100k-record windows). A body never
        holds a raw newline (JSON escapes it)."""
        return b"\n".join([b for (b,) in ranges.rows(self._conn(), where, "CAST(i.body AS BLOB)")])

    def indexed_records(self, where: RecordFilter = RecordFilter()) -> list[InferenceRecord]:
        """`records(where)`, read as one index range per version: fast for a model's window without a version."""
        return [row_to_record(r) for r in ranges.rows(self._conn(), where, ", ".join("i." + c for c in COLUMNS))]

    def nth_records(
        self,
        where: RecordFilter,
        offset: int,
        *,
        start: tuple[float, int] | None = None,
        limit: int = 1,
        newest_first: bool = False,
    ) -> list[tuple[float, int]]:
        """(ts, seq) of the records at positions `offset`.. in the order of `records(where, newest_first=...)`,
        counted from the record `start` (a (ts, seq) key, included); found on the index, never read."""
        return ranges.nth(self._conn(), where, offset, start=start, limit=limit, newest_first=newest_first)

    def label_count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM labels").fetchone()[0]

    def latency_rows(
        self, where: RecordFilter = RecordFilter()
    ) -> Iterator[tuple[str, str, str, float | None, float | None]]:
        """(model, version, status, latency_s, cost_usd) for summaries, streamed."""
        clause, params = where.where_clause()
        sql = f"SELECT i.model, i.version, i.status, i.latency_s, i.cost_usd FROM inferences i{clause}"
        yield from self._conn().execute(sql, params)

    def key_rows(
        self, where: RecordFilter = RecordFilter()
    ) -> Iterator[tuple[str | None, str, str, float | None, int | None, int | None]]:
        """(key_id, model, status, cost_usd, input_tokens, output_tokens) for spend summaries, streamed."""
        clause, params = where.where_clause()
        sql = (
            "SELECT i.key_id, i.model, i.status, i.cost_usd, json_extract(i.body, '$.input_tokens'),"
            f" json_extract(i.body, '$.output_tokens') FROM inferences i{clause}"
        )
        yield from self._conn().execute(sql, params)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
