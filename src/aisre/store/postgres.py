"""PostgreSQL store: the inference log, labels and signals of many gateway hosts in one database.

The same `Store` contract as `SQLiteStore` (one shared test suite runs against both): the same
rows (the `body` column holds the very JSON SQLite holds), the same ordering (`ts`, then `seq`), the
same all-or-nothing labels. Writes come from the batching writer: each batch is COPYed straight
into `inferences`; when an id is already there (a batch retried after a lost connection, whose
COMMIT may or may not have landed) the unique index refuses that COPY and the batch goes through a
temporary table and `INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING`: never a duplicate record.
Every database or connection failure surfaces as a `StoreError`, which the writer retries with
back-off; the broken connection is dropped and the next call opens a new one.

Connections: the batching writer's writes (`write_batch`, `prune`) go through one dedicated connection, kept
between batches (a pooled checkout would add its check's round trip to every batch, and the COPY fallback's temp
table lives in that session); everything else - reads, labels, signals, the feature tables - through a bounded
pool whose connections are checked on checkout (`aisre.store.postgres_conn`), so a database restart costs no
failed read and an unreachable database is one `StoreError` naming the URL.

The model registry, incidents and evaluations work here too (`aisre.store.tables`, migrations 30-32), and
so do the SLO buckets and the dashboard's traffic rollup, kept in `write_batch`'s and `add_labels`'
transactions by the same code as in SQLite (`aisre.store.buckets`, `rollups`, `dialects`; migration 20).
What is not on PostgreSQL yet (code that reads through `SQLiteStore._conn()`) is listed in
docs/store-postgres.md; setting one up on this store raises a `StoreError` naming issue #12.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aisre.errors import StoreError, UnknownRecordError, require
from aisre.records import InferenceRecord, Label, Signal
from aisre.store import buckets, migrations, rollups
from aisre.store.buckets import BucketSpec
from aisre.store.codec import COLUMNS, dumps, label_to_row, record_to_row
from aisre.store.dialects import LABELS_LOCK, RECORDS_LOCK, lock
from aisre.store.postgres_conn import PgConnection, ReaderPool, connect_seconds, first_line, lost, translate
from aisre.store.postgres_reads import PostgresReads
from aisre.store.rollup_batch import batch_sums

ISSUE = "issue #12"
_SQLITE_FEATURES = "this feature (it keeps its own tables in the SQLite file: API keys or the monitor lock)"
_COLS = ", ".join(COLUMNS)
_BATCH_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS aisre_batch (n BIGINT GENERATED ALWAYS AS IDENTITY, id TEXT, "
    "ts DOUBLE PRECISION, model TEXT, version TEXT, route TEXT, status TEXT, latency_s DOUBLE PRECISION, "
    "cost_usd DOUBLE PRECISION, key_id TEXT, body TEXT) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY aisre_batch ({_COLS}) FROM STDIN"
_COPY_DIRECT = f"COPY inferences ({_COLS}) FROM STDIN"
# Below this many rows a batch is sent as pipelined INSERTs: COPY's extra round trips (savepoint,
# COPY start/end) cost more than they save on the small batches of durable mode's group commits.
COPY_MIN_ROWS = 64
# ORDER BY n: records get their `seq` in the order of the batch, as in SQLite.
_MERGE = f"INSERT INTO inferences ({_COLS}) SELECT {_COLS} FROM aisre_batch ORDER BY n ON CONFLICT (id) DO NOTHING"
_INSERT = f"INSERT INTO inferences ({_COLS}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (id) DO NOTHING"


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by `***`: what error messages and logs show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class PostgresStore(PostgresReads):
    """A PostgreSQL database (`postgresql://user[:password]@host[:port]/db`), shared by many processes.

    The writer's batches go through one dedicated connection; reads, labels, signals and the feature tables
    through a pool of at most `pool_size` connections, each checked on checkout, `connect_timeout_s` to get one
    (all autocommit; writes in explicit transactions). `durable` batches are acknowledged only after a COMMIT
    with `synchronous_commit = on` (the WAL is flushed on the server); `fast` batches commit with
    `synchronous_commit = off` (a server crash may lose the last fraction of a second; a process crash loses
    nothing that was committed).

    `insert_method`: "copy" (batches of `COPY_MIN_ROWS` or more COPYed, smaller ones pipelined) or
    "pipeline" (always executemany of INSERT ... ON CONFLICT in pipeline mode, for comparison):
    COPY measured 2.2-2.7x faster on full batches (docs/benchmarks.md).
    """

    dialect = "postgresql"  # the SQL dialect `aisre.slo.events` renders the SLO buckets' SQL in

    def __init__(
        self,
        url: str,
        retention_days: float | None = None,
        *,
        connect_timeout_s: float = 10.0,
        insert_method: str = "copy",
        pool_size: int = 8,
    ) -> None:
        if insert_method not in ("copy", "pipeline"):
            raise StoreError(f"insert_method: expected 'copy' or 'pipeline', got {insert_method!r}")
        self._psycopg: Any = require("psycopg", "postgres", "the PostgreSQL store", package="psycopg")
        self._url = url
        self.retention_days = retention_days
        self.insert_method = insert_method
        self.connect_timeout_s = connect_timeout_s
        self._write_lock = threading.Lock()  # one batch at a time on the writer's connection
        self._writer: Any = None
        try:
            with self._errors("opening the store"):
                conn = self._connection()  # a direct connect: an unreachable database fails here, with libpq's reason
                migrations.apply_postgresql(conn, self.url)
                rollups.catch_up(PgConnection(self, conn))  # rows written before the rollup existed, once
            self._readers = ReaderPool(
                url,
                self.url,
                max_size=pool_size,
                timeout_s=connect_timeout_s,
                connect_timeout_s=connect_timeout_s,
                psycopg=self._psycopg,
            )
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """The store's URL, password redacted."""
        return redact(self._url)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # What the SQLite-only features reach for first: `_conn()` or the store as a file path. Each raises a
    # StoreError naming the gap, instead of a psycopg connection misused or an AttributeError later.
    def _conn(self) -> Any:
        raise unsupported(_SQLITE_FEATURES)

    def __fspath__(self) -> str:
        raise unsupported(_SQLITE_FEATURES)

    @property
    def path(self) -> str:
        """What listings print as the store's place (`aisre log stats`): the URL, password redacted.
        A PostgreSQL store has no file; code that needs one gets the error of `__fspath__`."""
        return self.url

    def _connection(self) -> Any:
        """The writer's dedicated connection (opened again if the last one broke). Only the writer's methods,
        under `_write_lock`, and single-threaded checks in tests use it; everything else goes through the pool."""
        conn = self._writer
        if conn is not None and not (conn.closed or conn.broken):
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._writer = self._psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=connect_seconds(self.connect_timeout_s),
            application_name="aisre",
        )
        return self._writer

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Every psycopg error as a StoreError naming the store; the writer's connection, if the error lost it,
        is closed (the retry reconnects). Pooled connections need no care: the pool discards a broken one."""
        psycopg = self._psycopg
        try:
            yield
        except psycopg.Error as exc:
            conn = self._writer
            if conn is not None and lost(conn, exc, psycopg):
                self._writer = None
                with contextlib.suppress(Exception):
                    conn.close()
            raise StoreError(f"PostgreSQL store {self.url}: {doing} failed: {first_line(exc)}") from None

    @contextlib.contextmanager
    def session(self, doing: str) -> Iterator[Any]:
        """A pooled connection for a unit of work (a transaction, a few statements); psycopg's errors inside as
        `StoreError`s naming the store and `doing`. Not re-run if the connection is lost: the caller retries."""
        with translate(doing, self.url, self._psycopg), self._readers.connection(doing) as conn:
            yield conn

    def bucket_sums(self, spec: BucketSpec, first_minute: int, n: int) -> Any:
        """What `aisre.slo.events` asks of the store: the SLO's bucket spec registered and caught up, then its
        per-minute sums (`buckets.ensure_and_read`) on a pooled connection."""
        with self.session(f"reading the SLO buckets of {spec.name!r}") as conn:
            return buckets.ensure_and_read(PgConnection(self, conn), spec, first_minute, n)

    # -- writes -------------------------------------------------------------------------
    def write_batch(self, records: Sequence[InferenceRecord], durable: bool = False) -> None:
        if not records:
            return
        rows = [_text_safe(row) if _has_nul(row) else row for row in map(record_to_row, records)]
        sums = batch_sums(records, rows)  # the batch's traffic rollup rows, computed before the lock
        with self._write_lock, self._errors(f"writing {len(rows)} records"):
            conn, began = self._begin(durable)
            with began:
                if self.insert_method == "copy" and len(rows) >= COPY_MIN_ROWS:
                    self._copy(conn, rows)
                else:
                    with conn.pipeline(), conn.cursor() as cur:
                        cur.executemany(_INSERT, rows)
                marks = PgConnection(self, conn)
                buckets.after_records(marks)  # the SLO minute buckets, same transaction
                rollups.after_records(marks, records, sums)  # the dashboard's traffic rollup, likewise

    def _begin(self, durable: bool) -> tuple[Any, contextlib.ExitStack]:
        """The batch's transaction begun on the writer's connection, holding `RECORDS_LOCK`: taken before the
        inserts get their `seq`s and held to COMMIT, since the SLO buckets' and the rollup's `seq` marks are exact
        only if batches commit in `seq` order (aisre.store.dialects says why). If the server had closed the
        connection (a restart while the writer was idle), nothing was written yet: begun once more on a new one."""
        psycopg = self._psycopg
        for attempt in (1, 2):
            conn = self._connection()
            began = contextlib.ExitStack()
            try:
                began.enter_context(conn.transaction())
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                lock(conn, RECORDS_LOCK)
                return conn, began
            except psycopg.OperationalError as exc:
                with contextlib.suppress(Exception):
                    began.close()
                if attempt == 2 or not lost(conn, exc, psycopg):
                    raise
                self._writer = None
                with contextlib.suppress(Exception):
                    conn.close()
        raise AssertionError("unreachable")

    def _copy(self, conn: Any, rows: list[tuple]) -> None:
        """COPY straight into `inferences` (one pass); if an id is already there (a batch retried after
        its COMMIT was lost, or an id repeated in the batch) the unique index refuses the COPY, and the
        batch goes through the temp table and `ON CONFLICT DO NOTHING` instead."""
        try:
            with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_DIRECT) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        except self._psycopg.errors.UniqueViolation:
            pass
        conn.execute(_BATCH_TABLE)  # IF NOT EXISTS, every time: a rolled-back creation must not be remembered
        with conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(_MERGE)

    def add_labels(self, labels: Sequence[Label]) -> None:
        """Attach ground truth; all-or-nothing: unknown record ids reject the whole call."""
        if not labels:
            return
        last = {label.record_id: label for label in labels}  # a repeated id: the last wins, as in SQLite
        with self.session(f"labelling {len(last)} records") as conn, conn.transaction():
            found = {r for (r,) in conn.execute("SELECT id FROM inferences WHERE id = ANY(%s)", (list(last),))}
            missing = [rid for rid in dict.fromkeys(label.record_id for label in labels) if rid not in found]
            if missing:
                raise UnknownRecordError(missing)
            lock(conn, LABELS_LOCK)  # no labels spec rebuilt under us
            marks = PgConnection(self, conn)
            specs = buckets.label_specs(marks)
            ids = list(last)
            buckets.relabel(marks, specs, ids, -1)  # what the labels being replaced had counted
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO labels (record_id, ts, value) VALUES (%s, %s, %s) ON CONFLICT (record_id)"
                    " DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value",
                    [label_to_row(label) for label in last.values()],
                )
            buckets.relabel(marks, specs, ids, +1)

    def write_signals(self, signals: Sequence[Signal], ts: float) -> None:
        """Append monitoring signals computed at time `ts` (epoch seconds)."""
        if not signals:
            return
        rows = [
            (ts, s.model, s.version, s.name, dumps(dict(sorted(s.labels.items()))), s.window_start, s.window_end,
             s.value, s.threshold, bool(s.breached))
            for s in signals
        ]  # fmt: skip
        with self.session(f"writing {len(rows)} signals") as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO signals (ts, model, version, name, labels, window_start, window_end, value,"
                " threshold, breached) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def prune(self, older_than: float, chunk: int = 20_000) -> int:
        """Delete records (and their labels) with ts < older_than, in short transactions; returns how many."""
        deleted = 0
        while True:
            with self._write_lock, self._errors("pruning records"):
                conn = self._connection()
                with conn.transaction():
                    cur = conn.execute(
                        "WITH doomed AS (SELECT seq, id FROM inferences WHERE ts < %s LIMIT %s),"
                        " gone AS (DELETE FROM labels WHERE record_id IN (SELECT id FROM doomed))"
                        " DELETE FROM inferences WHERE seq IN (SELECT seq FROM doomed)",
                        (older_than, chunk),
                    )
                    n = cur.rowcount
            if n <= 0:
                return deleted
            deleted += n

    def maintain(self, now: float) -> None:
        """Periodic upkeep from the writer thread: apply retention."""
        if self.retention_days is not None:
            self.prune(now - self.retention_days * 86_400)

    # -- reads (the queries themselves: aisre.store.postgres_reads) ------------------------
    def _fetch(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """One read on a pooled connection (re-run once if the server had just closed it)."""
        return self._readers.run(doing, lambda conn: conn.execute(sql, params).fetchall())

    def close(self) -> None:
        """Close the writer's connection and the pool (a read still running finishes first)."""
        readers = getattr(self, "_readers", None)
        if readers is not None:
            readers.close()
        with self._write_lock:
            conn, self._writer = self._writer, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def sqlite_only_config(cfg: Any) -> list[str]:
    """The parts of an `AisreConfig` that need the SQLite store today, each named by its config key:
    what `check_config` refuses at start-up when the store is PostgreSQL."""
    # Every feature runs on PostgreSQL now: slos and breakers' SLO conditions (SLO buckets), the dashboard (traffic
    # rollup), auth (API keys), monitors (runner lock, label re-checks). A feature that cannot yet appends
    # "key (why)" here, and `aisre serve`/`watch` refuse it at start-up, before connecting.
    used: list[str] = []
    return used


def check_config(cfg: Any) -> None:
    """At start-up with a PostgreSQL store: one StoreError naming every configured SQLite-only feature."""
    used = sqlite_only_config(cfg)
    if used:
        raise StoreError(
            f"store.url is PostgreSQL, but these configured features need a sqlite:/// store until {ISSUE} "
            f"brings them to PostgreSQL (docs/store-postgres.md): {'; '.join(used)}"
        )


def _has_nul(row: tuple) -> bool:
    # PostgreSQL TEXT cannot hold U+0000 (SQLite can): such a row would fail on every retry and hold up
    # the whole queue. The body is JSON (escaped as \\u0000); id, model, version, route, status and
    # key_id are plain text.
    return "\x00" in f"{row[0]}{row[2]}{row[3]}{row[4]}{row[5]}{row[8]}"


def _text_safe(row: tuple) -> tuple:
    """The row with U+0000 in its text columns replaced by U+FFFD (the replacement character)."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in row)


def unsupported(feature: str) -> StoreError:
    """The error every SQLite-only feature raises on a PostgreSQL store, naming the feature and the issue."""
    return StoreError(
        f"{feature} is not available on a PostgreSQL store yet ({ISSUE}; see docs/store-postgres.md): "
        "use a sqlite:/// store for it"
    )
