"""The model registry's tables in the store (SQLite or PostgreSQL): versions, stable pointer, append-only history.

Three tables beside the inference log (as `api_keys` is, see `aisre.store.keys`):

- `model_versions`: one row per (model, version): endpoint or artifact, training time, reference path,
  status (candidate | shadow | canary | stable | retired), metadata (JSON), created/updated times;
- `model_stable`: the stable pointer, one row per model that has a stable version;
- `model_history`: every change, never updated nor deleted (triggers refuse both, on either backend): who (actor),
  when, why, what (action), from -> to status, and the stable pointer before and after.

The largest history sequence number is the registry's *revision*: any change anywhere bumps it, so a
gateway learns that a CLI in another process changed the registry by reading one integer.

The rules (which transitions are legal, freezes, the gate) live in `aisre.respond.registry`; this module
only reads and writes, and gives it a write transaction (`StoreTables.immediate`: SQLite `BEGIN IMMEDIATE`,
PostgreSQL an advisory lock) so check-then-write is atomic across processes. The PostgreSQL schema is
migration 30 (`aisre.store.migrations_tables`); queries are written once, with `?` placeholders.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson

from aisre.store.tables import StoreTables

__all__ = ["HistoryEntry", "ModelVersion", "RegistryTables", "STATUSES"]

STATUSES = ("candidate", "shadow", "canary", "stable", "retired")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    endpoint TEXT,
    artifact TEXT,
    trained_at REAL,
    reference TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (model, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_stable (
    model TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    since REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    stable_before TEXT,
    stable_after TEXT
);
CREATE INDEX IF NOT EXISTS model_history_by_model ON model_history (model, seq);
CREATE TRIGGER IF NOT EXISTS model_history_no_update BEFORE UPDATE ON model_history
BEGIN SELECT RAISE(ABORT, 'model_history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS model_history_no_delete BEFORE DELETE ON model_history
BEGIN SELECT RAISE(ABORT, 'model_history is append-only'); END;
"""
_VERSION_COLUMNS = "model, version, status, endpoint, artifact, trained_at, reference, metadata, created_at, updated_at"
_HISTORY_COLUMNS = "seq, at, model, version, action, from_status, to_status, actor, reason, stable_before, stable_after"


@dataclasses.dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version. Times are Unix seconds; `trained_at` None when unknown."""

    model: str
    version: str
    status: str
    endpoint: str | None
    artifact: str | None
    trained_at: float | None
    reference: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change: `actor` (e.g. `cli:root`, `playbook:drift-rollback`, `api:admin`) moved `version` from
    `from_status` (None when it was registered) to `to_status` at `at`, because `reason`."""

    seq: int
    at: float
    model: str
    version: str
    action: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    stable_before: str | None
    stable_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _version(row: tuple) -> ModelVersion:
    model, version, status, endpoint, artifact, trained_at, reference, metadata, created, updated = row
    return ModelVersion(
        model, version, status, endpoint, artifact, trained_at, reference, orjson.loads(metadata), created, updated
    )


class RegistryTx:
    """Reads and writes inside one write transaction (see `RegistryTables.transaction`)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # a sqlite3.Connection or a tables.PgConnection: both take `?` placeholders

    def get(self, model: str, version: str) -> ModelVersion | None:
        row = self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return None if row is None else _version(row)

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        where, args = ("WHERE model = ?", (model,)) if model is not None else ("", ())
        rows = self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions {where} ORDER BY model, created_at, version", args
        )
        return [_version(r) for r in rows]

    def stable(self, model: str) -> str | None:
        row = self.conn.execute("SELECT version FROM model_stable WHERE model = ?", (model,)).fetchone()
        return None if row is None else row[0]

    def history(self, model: str, version: str | None = None) -> list[HistoryEntry]:
        sql = f"SELECT {_HISTORY_COLUMNS} FROM model_history WHERE model = ?"
        args: tuple = (model,)
        if version is not None:
            sql, args = sql + " AND version = ?", (model, version)
        return [HistoryEntry(*r) for r in self.conn.execute(sql + " ORDER BY seq", args)]

    def insert(self, v: ModelVersion) -> None:
        row = (*dataclasses.astuple(v)[:7], orjson.dumps(v.metadata).decode(), v.created_at, v.updated_at)
        self.conn.execute(f"INSERT INTO model_versions ({_VERSION_COLUMNS}) VALUES ({', '.join('?' * 10)})", row)

    def set_status(self, model: str, version: str, status: str, now: float) -> None:
        self.conn.execute(
            "UPDATE model_versions SET status = ?, updated_at = ? WHERE model = ? AND version = ?",
            (status, now, model, version),
        )

    def set_stable(self, model: str, version: str | None, now: float) -> None:
        if version is None:
            self.conn.execute("DELETE FROM model_stable WHERE model = ?", (model,))
        else:
            self.conn.execute(
                "INSERT INTO model_stable (model, version, since) VALUES (?, ?, ?) ON CONFLICT (model)"
                " DO UPDATE SET version = excluded.version, since = excluded.since",
                (model, version, now),
            )

    def append(
        self,
        *,
        at: float,
        model: str,
        version: str,
        action: str,
        from_status: str | None,
        to_status: str,
        actor: str,
        reason: str | None,
        stable_before: str | None,
        stable_after: str | None,
    ) -> None:
        self.conn.execute(
            f"INSERT INTO model_history ({_HISTORY_COLUMNS.removeprefix('seq, ')}) VALUES ({', '.join('?' * 10)})",
            (at, model, version, action, from_status, to_status, actor, reason, stable_before, stable_after),
        )


class RegistryTables(StoreTables):
    """The registry's tables in a store (a `SQLiteStore` or `PostgresStore`, a path, or a store URL)."""

    SCHEMA = _SCHEMA
    FEATURE = "registry"

    def read(self) -> RegistryTx:
        """Reads outside a write transaction (each statement sees a consistent snapshot)."""
        return RegistryTx(self.conn())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[RegistryTx]:
        """A write transaction holding the registry's write lock (`immediate`): two processes promoting at once
        are serialised, so the status each one checked is the status it changes. Rolled back on error."""
        with self.immediate() as conn:
            yield RegistryTx(conn)

    def revision(self) -> int:
        """The registry's revision: the last history sequence number (0 when empty); any change bumps it."""
        row = self.conn().execute("SELECT MAX(seq) FROM model_history").fetchone()
        return int(row[0] or 0)
