"""Incident tables in the store (SQLite or PostgreSQL): incidents and their append-only timelines.

- `incidents`: id (an integer, easy to type: `aisre incidents ack 12`), model, version, title, severity,
  status (open | acknowledged | resolved), the trigger key that opened it, opened/acked/resolved times and
  actors. A partial unique index allows one unresolved incident per trigger key, so two processes racing
  to open the same incident cannot both succeed.
- `incident_events`: the timeline (trigger, retrigger, evidence, action, outcome, note, ack, resolve), each
  with a time, an actor, a one-line summary and JSON data; never updated nor deleted (triggers refuse it).

The lifecycle rules live in `aisre.respond.incidents`. The PostgreSQL schema is migration 31
(`aisre.store.migrations_tables`); queries are written once, with `?` placeholders (`aisre.store.tables`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson

from aisre.store.tables import StoreTables

__all__ = ["Incident", "IncidentEvent", "IncidentTables", "INCIDENT_STATUSES", "SEVERITIES", "EVENT_KINDS"]

INCIDENT_STATUSES = ("open", "acknowledged", "resolved")
SEVERITIES = ("critical", "high", "medium", "low", "info")
EVENT_KINDS = ("trigger", "retrigger", "evidence", "action", "outcome", "note", "ack", "resolve")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT,
    version TEXT,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    trigger_key TEXT,
    opened_at REAL NOT NULL,
    opened_by TEXT NOT NULL,
    acked_at REAL,
    acked_by TEXT,
    resolved_at REAL,
    resolved_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open_per_trigger ON incidents (trigger_key)
    WHERE status != 'resolved' AND trigger_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS incidents_by_status ON incidents (status, opened_at);
CREATE TABLE IF NOT EXISTS incident_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS incident_events_by_incident ON incident_events (incident_id, seq);
CREATE TRIGGER IF NOT EXISTS incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
"""
_COLUMNS = (
    "id, model, version, title, severity, status, trigger_key, opened_at, opened_by, "
    "acked_at, acked_by, resolved_at, resolved_by"
)
_EVENT_COLUMNS = "seq, incident_id, at, kind, actor, summary, data"


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentEvent:
    """One timeline entry. `data` holds the evidence (signal values, thresholds), an action's parameters
    and outcome, and so on; `summary` is the line a human reads."""

    seq: int
    incident_id: int
    at: float
    kind: str
    actor: str
    summary: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Incident:
    """One incident; `events` is its timeline, oldest first (empty when listed without it)."""

    id: int
    model: str | None
    version: str | None
    title: str
    severity: str
    status: str
    trigger_key: str | None
    opened_at: float
    opened_by: str
    acked_at: float | None
    acked_by: str | None
    resolved_at: float | None
    resolved_by: str | None
    events: tuple[IncidentEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _event(row: tuple) -> IncidentEvent:
    seq, incident_id, at, kind, actor, summary, data = row
    return IncidentEvent(seq, incident_id, at, kind, actor, summary, orjson.loads(data))


def _incident(row: tuple, events: tuple[IncidentEvent, ...] = ()) -> Incident:
    return Incident(*row[:13], events=events)  # type: ignore[misc]  # the 13 columns of _COLUMNS, in order


class IncidentTx:
    """Reads and writes inside one transaction (see `IncidentTables.transaction`)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # a sqlite3.Connection or a tables.PgConnection: both take `?` placeholders

    def get(self, incident_id: int, with_events: bool = True) -> Incident | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            return None
        events = tuple(self.events(incident_id)) if with_events else ()
        return _incident(row, events)

    def open_for(self, trigger_key: str) -> Incident | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE trigger_key = ? AND status != 'resolved'", (trigger_key,)
        ).fetchone()
        return None if row is None else _incident(row)

    def events(self, incident_id: int) -> list[IncidentEvent]:
        rows = self.conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM incident_events WHERE incident_id = ? ORDER BY seq", (incident_id,)
        )
        return [_event(r) for r in rows]

    def list(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        where, args = [], []
        for clause, value in (("status = ?", status), ("model = ?", model), ("opened_at >= ?", since)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM incidents" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
        if limit is not None:
            args.append(limit)
        return [_incident(r) for r in self.conn.execute(sql, args)]

    def insert(
        self,
        *,
        model: str | None,
        version: str | None,
        title: str,
        severity: str,
        trigger_key: str | None,
        at: float,
        actor: str,
    ) -> int:
        cursor = self.conn.execute(
            "INSERT INTO incidents (model, version, title, severity, status, trigger_key, opened_at, opened_by) "
            "VALUES (?, ?, ?, ?, 'open', ?, ?, ?) RETURNING id",
            (model, version, title, severity, trigger_key, at, actor),
        )
        return int(cursor.fetchone()[0])

    def set_status(self, incident_id: int, status: str, at: float, actor: str) -> None:
        column = {"acknowledged": "acked", "resolved": "resolved"}[status]
        self.conn.execute(
            f"UPDATE incidents SET status = ?, {column}_at = ?, {column}_by = ? WHERE id = ?",
            (status, at, actor, incident_id),
        )

    def append(self, incident_id: int, *, at: float, kind: str, actor: str, summary: str, data: Any) -> None:
        self.conn.execute(
            f"INSERT INTO incident_events ({_EVENT_COLUMNS.removeprefix('seq, ')}) VALUES (?, ?, ?, ?, ?, ?)",
            (incident_id, at, kind, actor, summary, orjson.dumps(data or {}, option=orjson.OPT_NON_STR_KEYS).decode()),
        )


class IncidentTables(StoreTables):
    """The incident tables in a store (a `SQLiteStore` or `PostgresStore`, a path, or a store URL)."""

    SCHEMA = _SCHEMA
    FEATURE = "incidents"

    def read(self) -> IncidentTx:
        return IncidentTx(self.conn())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[IncidentTx]:
        """A write transaction holding the incidents' write lock (`immediate`); rolled back on error."""
        with self.immediate() as conn:
            yield IncidentTx(conn)
