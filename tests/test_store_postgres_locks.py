"""The one-runner lock on PostgreSQL (`AdvisoryLock`): one holder at a time, taken over when the holder dies."""

from __future__ import annotations

import signal
import subprocess
import time

from aisre.locks import AdvisoryLock, RunnerLock, store_lock
from aisre.store import open_store

from .conftest import PYTHON
from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL

HOLD = """
import sys, time
from aisre.locks import AdvisoryLock
lock = AdvisoryLock(sys.argv[1], "monitors")
assert lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def _eventually(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_one_of_two_holders_wins_and_the_other_gets_it_after_release(pg_server) -> None:  # noqa: F811
    url = pg_server.create_schema()
    first, second = AdvisoryLock(url, "monitors"), AdvisoryLock(url, "monitors")
    try:
        assert first.acquire() and first.held
        assert first.acquire(), "acquiring again while holding it stays True"
        assert not second.acquire() and not second.held
        other_name = AdvisoryLock(url, "slo")
        assert other_name.acquire(), "another name is another lock"
        other_name.release()
        first.release()
        assert not first.held and second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


def test_two_schemas_of_one_database_lock_independently(pg_server) -> None:  # noqa: F811
    a, b = AdvisoryLock(pg_server.create_schema(), "monitors"), AdvisoryLock(pg_server.create_schema(), "monitors")
    try:
        assert a.acquire() and b.acquire()
    finally:
        a.release()
        b.release()


def test_when_the_holding_process_is_killed_the_standby_takes_the_lock(pg_server) -> None:  # noqa: F811
    url = pg_server.create_schema()
    holder = subprocess.Popen([PYTHON, "-c", HOLD, url], stdout=subprocess.PIPE, text=True)
    standby = AdvisoryLock(url, "monitors")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not standby.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # The server ends the dead client's session when it notices the closed socket, and the lock with it.
        assert _eventually(standby.acquire), "the lock of a killed holder was never released"
    finally:
        holder.kill()
        holder.wait(timeout=30)
        standby.release()


def test_a_holder_whose_session_ended_finds_out_and_competes_again(pg_server) -> None:  # noqa: F811
    import psycopg

    url = pg_server.create_schema()
    lock = AdvisoryLock(url, "slo")
    try:
        assert lock.acquire()
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:  # what a database restart does to it
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                ("aisre slo lock",),
            )
        assert _eventually(lock.acquire), "the holder did not take the lock again on a new session"
        other = AdvisoryLock(url, "slo")
        assert not other.acquire(), "the re-taken lock excludes others again"
    finally:
        lock.release()


def test_store_lock_is_an_advisory_lock_on_postgresql_and_a_file_lock_on_sqlite(pg_server, tmp_path) -> None:  # noqa: F811
    pg = open_store(pg_server.create_schema())
    sqlite = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        on_pg = store_lock(pg, "monitors", tmp_path / "unused.lock")
        assert isinstance(on_pg, AdvisoryLock) and "aisre.monitors" in on_pg.path
        on_sqlite = store_lock(sqlite, "monitors", tmp_path / "a.db.monitors.lock")
        assert isinstance(on_sqlite, RunnerLock) and on_sqlite.path == tmp_path / "a.db.monitors.lock"
        assert not (tmp_path / "unused.lock").exists()
    finally:
        pg.close()
        sqlite.close()
