"""Versioned schema migrations of the inference log, for SQLite and PostgreSQL, applied at start-up.

Each migration is (version, description, SQL per dialect), applied in order, once, and recorded in
`schema_migrations`. All pending migrations run in ONE transaction taken under a lock (SQLite
`BEGIN IMMEDIATE`, PostgreSQL `pg_advisory_xact_lock`), so many processes starting at once are safe:
the first applies them, the others wait and then find nothing to do. Migration 1 is the schema SQLite
stores have always had (`meta.schema_version` = 1): its statements are all `IF NOT EXISTS`, so an
existing database is adopted unchanged. A database migrated by a newer aisre is refused, not guessed at.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aisre.errors import StoreError
from aisre.store import buckets, migrations_tables, rollups_pg


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: str
    postgresql: str | tuple[str, ...]  # a tuple: statements that hold `;` themselves (PL/pgSQL bodies)


_SQLITE_1 = """
CREATE TABLE IF NOT EXISTS inferences (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    latency_s REAL,
    cost_usd REAL,
    key_id TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS inferences_id ON inferences (id);
CREATE INDEX IF NOT EXISTS inferences_model_version_ts ON inferences (model, version, ts);
CREATE TABLE IF NOT EXISTS labels (
    record_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    value TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    window_start REAL,
    window_end REAL,
    value REAL,
    threshold REAL,
    breached INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_model_name_ts ON signals (model, name, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""

# The same tables in PostgreSQL. `body` stays TEXT holding the exact JSON SQLite holds (see
# docs/store-postgres.md: JSONB would re-parse every row on COPY and refuses a `\u0000` escape, which
# would make a batch that can never be written). `ts` gets its own index: prune and `since`-only reads.
_POSTGRESQL_1 = """
CREATE TABLE IF NOT EXISTS inferences (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    latency_s DOUBLE PRECISION,
    cost_usd DOUBLE PRECISION,
    key_id TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS inferences_id ON inferences (id);
CREATE INDEX IF NOT EXISTS inferences_model_version_ts ON inferences (model, version, ts);
CREATE INDEX IF NOT EXISTS inferences_ts ON inferences (ts);
CREATE TABLE IF NOT EXISTS labels (
    record_id TEXT PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    value TEXT
);
CREATE TABLE IF NOT EXISTS signals (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    window_start DOUBLE PRECISION,
    window_end DOUBLE PRECISION,
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    breached BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_model_name_ts ON signals (model, name, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
"""

MIGRATIONS: tuple[Migration, ...] = (Migration(1, "inference log, labels, signals, meta", _SQLITE_1, _POSTGRESQL_1),)
# 10-19: API keys on PostgreSQL (SQLite stores create `api_keys` on first use: store/key_tables.py).
_POSTGRESQL_10 = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    models TEXT,
    rpm BIGINT,
    tpm BIGINT,
    max_concurrent BIGINT,
    budget_usd DOUBLE PRECISION,
    budget_period TEXT,
    expires_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
"""
MIGRATIONS = (*MIGRATIONS, Migration(10, "API keys", "", _POSTGRESQL_10))
# 30-39: registry, incidents, evaluations on PostgreSQL (SQLite stores create them on first use).
MIGRATIONS = tuple(
    sorted((*MIGRATIONS, *(Migration(v, d, "", pg) for v, d, pg in migrations_tables.TABLES)), key=lambda m: m.version)
)
# 20-29: SLO buckets and the dashboard's traffic rollup on PostgreSQL (SQLite stores create them on open).
_POSTGRESQL_20 = buckets.PG_SCHEMA + rollups_pg.PG_SCHEMA
MIGRATIONS = tuple(
    sorted((*MIGRATIONS, Migration(20, "SLO buckets, traffic rollup", "", _POSTGRESQL_20)), key=lambda m: m.version)
)
LATEST = MIGRATIONS[-1].version

_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
}
# Any constant: the key every aisre process takes to migrate a PostgreSQL database ("aisre" in ASCII).
ADVISORY_LOCK_KEY = 0x6169737265


def statements(sql: str | tuple[str, ...]) -> list[str]:
    """The `;`-separated statements of a migration (ours hold no `;` inside a statement), or its tuple of
    statements as they are (a PL/pgSQL function body holds `;`)."""
    if not isinstance(sql, str):
        return [s.strip() for s in sql if s.strip()]
    return [s.strip() for s in sql.split(";") if s.strip()]


def _pending(applied: set[int], where: str) -> list[Migration]:
    newer = [v for v in applied if v > LATEST]
    if newer:
        raise StoreError(
            f"store {where}: its schema is at version {max(newer)}, newer than this aisre knows ({LATEST}); "
            "upgrade aisre to use it"
        )
    return [m for m in MIGRATIONS if m.version not in applied]


def apply_sqlite(conn: Any, where: str) -> list[int]:
    """Apply the pending migrations to a `sqlite3` connection; returns the versions applied now."""
    if conn.in_transaction:
        conn.commit()
    if _sqlite_current(conn):
        return []  # the usual start: nothing to do, and no write lock taken to find that out
    conn.execute("BEGIN IMMEDIATE")  # the write lock: other processes starting now wait here
    try:
        conn.execute(_TABLE["sqlite"])
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        todo = _pending(applied, where)
        for m in todo:
            for statement in statements(m.sqlite):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (m.version, m.description, time.time()))
        if todo:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(LATEST),))
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return [m.version for m in todo]


def _sqlite_current(conn: Any) -> bool:
    try:
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
    except Exception:  # noqa: BLE001 - no such table yet (sqlite3.OperationalError)
        return False
    finally:
        if conn.in_transaction:
            conn.commit()
    return applied == {m.version for m in MIGRATIONS}


def apply_postgresql(conn: Any, where: str) -> list[int]:
    """Apply the pending migrations on a psycopg connection (not in a transaction); returns those applied now."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        conn.execute(_TABLE["postgresql"])
        applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        todo = _pending(applied, where)
        for m in todo:
            for statement in statements(m.postgresql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (m.version, m.description, time.time()))
        if todo:
            conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(LATEST),))
    return [m.version for m in todo]
