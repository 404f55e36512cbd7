"""One runner per store: which one of several processes runs a background loop (monitors, the SLO judge).

On SQLite, `RunnerLock`: an exclusive, non-blocking `flock` on a file beside the store. On PostgreSQL
(many hosts, no shared file), `AdvisoryLock`: a session-level `pg_try_advisory_lock` held by a
connection of its own. Either way `acquire()` is True in exactly one process at a time, the others
retry now and then, and the lock goes when its holder does (the kernel drops the flock; the server
ends the dead holder's session), so there is never a stale lock to clean (docs/decisions.md, "One
monitor runner per store"). `store_lock` picks the right one for a store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO, Any

from aisre.errors import require


class RunnerLock:
    """A non-blocking exclusive `flock`; `acquire()` is True in exactly one process at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        f = open(self.path, "ab")  # noqa: SIM115 -- kept open while the lock is held
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


# The lock's 64-bit key: the name and the schema the store's tables are in, so two aisre deployments
# in two schemas of one database do not exclude each other.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('aisre.' || current_schema() || '.' || %s, 0))"


class AdvisoryLock:
    """`RunnerLock`'s interface over a PostgreSQL session-level advisory lock named `name`.

    The lock lives in a connection opened for it alone (not a store connection a reader might close):
    while it is held, `acquire()` checks that connection still answers, so a holder whose connection
    broke (a database restart ends every session, and with it the lock) finds out and competes again
    instead of running beside a new holder. `path` is what messages print: the lock and the URL,
    password redacted.
    """

    def __init__(self, url: str, name: str, *, connect_timeout_s: float = 10.0) -> None:
        from aisre.store.postgres import redact

        self._url = url
        self.name = name
        self.connect_timeout_s = connect_timeout_s
        self.path = f"the advisory lock aisre.{name} on {redact(url)}"
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def acquire(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except Exception:  # the session ended, and with it the lock: compete again
                self._drop()
        psycopg: Any = require("psycopg", "postgres", "the PostgreSQL store", package="psycopg")
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout_s)),
                application_name=f"aisre {self.name} lock",
            )
        except psycopg.Error:
            return False  # the server is away: nobody here can run against it; retry later
        try:
            row = conn.execute(_TRY_LOCK, (self.name,)).fetchone()
        except psycopg.Error:
            row = None
        if not (row and row[0]):
            with contextlib.suppress(Exception):
                conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        # Closing the session releases its advisory locks (an explicit unlock would need the session anyway).
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def store_lock(store: Any, name: str, path: str | os.PathLike[str]) -> RunnerLock | AdvisoryLock:
    """The one-runner lock `name` of `store`: an advisory lock on a PostgreSQL store, else a flock on the
    file `path` (beside the SQLite database)."""
    from aisre.store.postgres import PostgresStore  # no psycopg import: that happens when a store opens

    if isinstance(store, PostgresStore):
        return AdvisoryLock(store._url, name, connect_timeout_s=store.connect_timeout_s)
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        return AdvisoryLock(store, name)
    return RunnerLock(path)


__all__ = ["AdvisoryLock", "RunnerLock", "store_lock"]
