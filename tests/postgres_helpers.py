"""A real PostgreSQL 15 for tests: `initdb` into a temp dir, `pg_ctl` on a free port, stopped afterwards.

`pg_server` (session scope) starts one server for the whole run; `pg_url` gives each test a fresh
empty database on it, so tests never see each other's rows. As root the server runs as the
`postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

PG_BIN = Path(os.environ.get("AISRE_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "aisre"


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:`port`, trust authentication."""

    def __init__(self, fsync: bool = True) -> None:
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="aisre-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: object, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def _options(self) -> str:
        # The durability tests keep fsync on (a server that acknowledges a COMMIT has flushed it); the
        # contract tests may turn it off: they crash no machine, and it makes start-up and shutdown quick.
        fsync = "on" if self.fsync else "off"
        return f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync={fsync}"

    def start(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-o", self._options(), "-l", self.dir / "log", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self._run(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-m",
            "fast",
            "-o",
            self._options(),
            "-l",
            self.dir / "log",
            "-w",
            "restart",
        )

    def create_database(self) -> str:
        """A fresh empty database, as a URL: what a test whose server is its own gets."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self) -> str:
        """A fresh empty schema in the `postgres` database, as a URL whose connections search only it:
        as isolated as a new database for the store's tables, and ~100x quicker to make."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def port_free(self) -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) != 0

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres(fsync: bool = True) -> Iterator[PostgresServer]:
    """A started server, stopped and removed on exit; skips the test if PostgreSQL is not installed."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN} (`make test` installs Debian's postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'aisre[postgres]')")
    server = PostgresServer(fsync=fsync)
    try:
        server.start()
        deadline = time.monotonic() + 30
        while server.port_free() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server
    finally:
        server.cleanup()


_SESSION: list[PostgresServer] = []  # the one server of this test process, whichever module asked first


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One server for the whole run: test modules import this fixture, and each import is its own
    session fixture to pytest, so the first starts the server and the others share it."""
    if _SESSION:
        yield _SESSION[0]
        return
    with running_postgres(fsync=False) as server:
        _SESSION.append(server)
        try:
            yield server
        finally:
            _SESSION.clear()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh empty schema on the session's server, as a postgresql:// URL."""
    return pg_server.create_schema()
