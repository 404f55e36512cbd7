"""The connections of a PostgreSQL store: a bounded, checked pool for readers, and the one `?`-style adapter.

Why a pool: a store is read from many threads (the dashboard's request handlers, the SLO judge, the registry,
incident and key lookups of the gateway, CLI reads). A connection per thread grew without bound and kept a dead
connection after a database restart until a query failed on it. `ReaderPool` hands out at most `max_size`
connections (`psycopg_pool.ConnectionPool`), checks each on checkout with an empty query (one round trip: a
connection the server closed is discarded and replaced before any query meets it), and turns "no connection in
time" into a `StoreError` naming the URL (password redacted) and saying whether the database is unreachable (why,
from one direct attempt) or every pooled connection is busy.

Why one adapter: the feature modules (registry, incidents, evaluations, API keys, SLO buckets, the traffic rollup,
the dashboard's readers) write each query once with SQLite's `?` placeholders. `PgConnection` is the psycopg side
of that seam: `execute(sql, params)` / `executemany` with `?`, a cursor with `fetchone`/`fetchall`/iteration back,
as `sqlite3.Connection` gives. Bound to one connection (a transaction's) it passes psycopg's errors up unchanged, for
the caller's boundary (`PostgresStore._errors`, `StoreTables.immediate`) to translate; pooled (no connection given)
each statement checks a connection out and back, errors become `StoreError`s, and a statement that met a connection
the server had just closed is re-run once on a fresh one (a read outside a transaction is safe to repeat).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from aisre.errors import StoreError, require

T = TypeVar("T")
_SLICE_S = 0.25  # a checkout waits in slices this long, looking for a failed connection attempt in between


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """A query written with `?` placeholders in psycopg's style (`%s`; a literal `%` doubled).
    The feature queries hold no `?` or `%` inside string literals, and never use the `?` JSON operators."""
    return sql.replace("%", "%%").replace("?", "%s")


def lost(conn: Any, exc: BaseException, psycopg: Any) -> bool:
    """Whether `exc` lost the connection (closed by the server, a broken socket): then a transaction on it is
    gone, and only a re-run on another connection can succeed."""
    return bool(conn.closed or conn.broken or isinstance(exc, psycopg.OperationalError))


class Rows:
    """A read's rows, fetched before its connection went back to the pool: the part of a cursor callers use."""

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[tuple]:
        rest, self._at = self._rows[self._at :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.fetchall())


class ReaderPool:
    """At most `max_size` connections to `url` (autocommit), each checked on checkout; `timeout_s` to get one."""

    def __init__(
        self, url: str, shown_url: str, *, max_size: int, timeout_s: float, connect_timeout_s: float, psycopg: Any
    ) -> None:
        pool_module: Any = require("psycopg_pool", "postgres", "the PostgreSQL store", package="psycopg-pool")
        if max_size < 1:
            raise StoreError(f"pool_size: expected at least 1 connection, got {max_size}")
        self._psycopg = psycopg
        self._url = url
        self.shown_url = shown_url
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._timeout_error = pool_module.PoolTimeout
        # When the pool last failed and last managed to open a connection (monotonic seconds): while its newest
        # attempt failed, a checkout does not wait out `timeout_s` for a server that refuses connections.
        self._last_failure = self._last_success = 0.0
        self._pool = pool_module.ConnectionPool(
            url,
            connection_class=self._tracked_connection_class(),
            min_size=1,  # one warm connection; more are opened on demand and closed after `max_idle`
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": connect_seconds(connect_timeout_s),
                "application_name": "aisre",
            },
            check=pool_module.ConnectionPool.check_connection,
            timeout=timeout_s,
            max_idle=300.0,
            # Give up a run of failed attempts (backing off 1, 2, 4... s) soon: the next checkout starts a new
            # run at once, so a database back after a long outage is found within seconds, not minutes.
            reconnect_timeout=max(10.0, timeout_s),
            num_workers=2,
            name=f"aisre {shown_url}",
            open=True,
        )

    def _tracked_connection_class(self) -> Any:
        pool = self

        class TrackedConnection(self._psycopg.Connection):  # type: ignore[name-defined]
            """psycopg's connection, noting on the pool whether the last attempt to open one failed."""

            @classmethod
            def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    conn = super().connect(*args, **kwargs)
                except Exception:
                    pool._last_failure = time.monotonic()
                    raise
                pool._last_success = time.monotonic()
                return conn

        return TrackedConnection

    @contextlib.contextmanager
    def connection(self, doing: str) -> Iterator[Any]:
        """A checked connection, back to the pool on exit (a broken one is discarded there, an open transaction
        rolled back); a `StoreError` naming the store when none can be had in `timeout_s`, at once when the
        database refuses connections."""
        conn = self._checkout(doing)
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    def _checkout(self, doing: str) -> Any:
        deadline = time.monotonic() + self.timeout_s
        answered = False  # the database answered a probe during this checkout: only the pool is behind
        while True:
            remaining = deadline - time.monotonic()
            try:  # in short waits, so that a failed connection attempt (the server down) ends the wait early
                return self._pool.getconn(timeout=max(0.01, min(_SLICE_S, remaining)))
            except self._timeout_error:
                out_of_time = remaining <= _SLICE_S
                if out_of_time or (not answered and self._last_failure > self._last_success):
                    why = self._why_no_connection()
                    if why is not None or out_of_time:
                        raise StoreError(
                            f"PostgreSQL store {self.shown_url}: {doing} failed: {why or self._busy()}"
                        ) from None
                    answered = True  # back up: the pool's next attempt (backing off, seconds) will connect

    def _why_no_connection(self) -> str | None:
        """Why the database is unreachable, from one direct attempt; None if it answers (the pool is just busy,
        or about to reconnect)."""
        try:
            probe = self._psycopg.connect(self._url, connect_timeout=connect_seconds(self.connect_timeout_s))
        except self._psycopg.Error as exc:
            return f"the database is unreachable ({first_line(exc)})"
        with contextlib.suppress(Exception):
            probe.close()
        return None

    def _busy(self) -> str:
        stats = self._pool.get_stats()
        return (
            f"no connection free within {self.timeout_s:g}s: all {stats.get('pool_size', '?')} pooled connections"
            f" are busy ({stats.get('requests_waiting', 0)} requests waiting); raise the store's pool_size"
        )

    def run(self, doing: str, work: Callable[[Any], T], *, keep: tuple[type[BaseException], ...] = ()) -> T:
        """`work(conn)` on a pooled connection, re-run once on a fresh one if the server closed the first (the
        window between the checkout's check and the query), so `work` must be safe to repeat: a read. psycopg's
        errors but `keep` become `StoreError`s."""
        psycopg = self._psycopg
        for attempt in (1, 2):
            with translate(doing, self.shown_url, psycopg, keep=keep), self.connection(doing) as conn:
                try:
                    return work(conn)
                except psycopg.OperationalError as exc:
                    if attempt == 2 or not lost(conn, exc, psycopg):
                        raise
                    conn.close()  # discarded by the pool on return; the next checkout opens a new one
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.close()


@contextlib.contextmanager
def translate(
    doing: str, shown_url: str, psycopg: Any, *, keep: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """psycopg's errors (other than `keep`) as a `StoreError` naming the store and what was being done."""
    try:
        yield
    except keep:
        raise
    except psycopg.Error as exc:
        raise StoreError(f"PostgreSQL store {shown_url}: {doing} failed: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect_seconds(timeout_s: float) -> int:
    """libpq's connect_timeout: whole seconds, at least 1 (0 would mean wait forever)."""
    return max(1, int(timeout_s))


class PgConnection:
    """A PostgreSQL connection that speaks the feature modules' query style, as `sqlite3.Connection` does.

    `PgConnection(store, conn)`: bound to `conn` (a transaction's), psycopg's errors passed up unchanged.
    `PgConnection(store)`: pooled, for reads outside a transaction; each statement on a checked pooled connection,
    its rows fetched before the connection goes back; errors (but integrity errors) as `StoreError`s.
    """

    def __init__(self, store: Any, conn: Any = None, *, doing: str = "a query") -> None:
        self.store = store
        self.raw = conn
        self.psycopg: Any = store._psycopg  # noqa: SLF001 - the optional dependency the store imported
        self._doing = doing

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        query, args = pg_sql(sql), tuple(params)
        if self.raw is not None:
            return self.raw.execute(query, args)

        def read(conn: Any) -> Rows:
            cur = conn.execute(query, args)
            return Rows(cur.fetchall() if cur.description is not None else [], cur.rowcount)

        return self.store._readers.run(self._doing, read, keep=(self.psycopg.IntegrityError,))  # noqa: SLF001

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.raw is None:
            raise TypeError("executemany needs a bound connection (inside a transaction)")
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(pg_sql(sql), rows)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction (a savepoint inside one) on the bound connection."""
        return self.raw.transaction()
