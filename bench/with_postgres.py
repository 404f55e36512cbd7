"""Run one command against a throwaway local PostgreSQL 15: the benchmarks' database, started as the tests start theirs.

    .venv/bin/python bench/with_postgres.py .venv/bin/python bench/ingest.py --writers 1,2,4 --store {url}

`initdb` into a temp dir, `pg_ctl start` on a free port with fsync on (`tests/postgres_helpers.py`), a fresh
database whose URL replaces `{url}` in the command, then the server is stopped and its directory removed, whatever
the command did. Exits with the command's status. Needs the PostgreSQL 15 binaries (`AISRE_PG_BIN`, default
/usr/lib/postgresql/15/bin) and psycopg.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.postgres_helpers

from tests.postgres_helpers import PG_BIN, PostgresServer  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or not any("{url}" in a for a in argv):
        print(
            "usage: with_postgres.py COMMAND ... {url} ...  ({url} is replaced by the database's URL)", file=sys.stderr
        )
        return 2
    if not (PG_BIN / "initdb").exists():
        print(f"PostgreSQL 15 binaries not found in {PG_BIN} (set AISRE_PG_BIN)", file=sys.stderr)
        return 2
    server = PostgresServer(fsync=True)
    try:
        server.start()
        deadline = time.monotonic() + 30
        while server.port_free() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = server.create_database()
        version = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True).stdout
        print(f"{version.strip()}, fsync on, {url}", flush=True)
        return subprocess.run([a.replace("{url}", url) for a in argv]).returncode
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
