"""Offline evaluation results in the store (SQLite or PostgreSQL): one row per `aisre eval` run, never updated.

The report is kept whole as JSON (every check with its value, interval and threshold), so a gate decision
can be explained later from the row alone; `passed` sits in its own column so the gate needs no JSON.
The newest row of a (model, version) is the one that counts: an evaluation that failed after one that
passed (new golden data, stricter thresholds) closes the gate again. The PostgreSQL schema is migration 32
(`aisre.store.migrations_tables`); queries are written once, with `?` placeholders (`aisre.store.tables`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from aisre.store.tables import StoreTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    passed INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_model_version_ts ON evaluations (model, version, ts);
"""


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """One stored run: `ts` is when it ran (epoch seconds), `report` the result's JSON document."""

    seq: int
    model: str
    version: str
    ts: float
    passed: bool
    report: dict[str, Any]


class EvaluationStore(StoreTables):
    """The `evaluations` table of a store: a `SQLiteStore` or `PostgresStore`, a path, or a store URL."""

    SCHEMA = _SCHEMA
    FEATURE = "evaluations"

    def add(self, model: str, version: str, ts: float, passed: bool, report: dict[str, Any]) -> int:
        """Append one run; returns its sequence number. `report` must be JSON-safe (no NaN)."""
        body = orjson.dumps(report).decode()
        with self.immediate() as conn:
            cursor = conn.execute(
                "INSERT INTO evaluations (model, version, ts, passed, report) VALUES (?, ?, ?, ?, ?) RETURNING seq",
                (model, version, float(ts), bool(passed), body),
            )
            return int(cursor.fetchone()[0])

    def latest(self, model: str, version: str) -> StoredEvaluation | None:
        """The newest run of `model`/`version` (by time, then by insertion), or None if it was never evaluated."""
        row = (
            self.conn()
            .execute(
                "SELECT seq, model, version, ts, passed, report FROM evaluations WHERE model = ? AND version = ?"
                " ORDER BY ts DESC, seq DESC LIMIT 1",
                (model, version),
            )
            .fetchone()
        )
        return None if row is None else _stored(row)

    def history(self, model: str, version: str | None = None, limit: int | None = None) -> list[StoredEvaluation]:
        """Runs of a model (one version, or all), newest first."""
        sql = "SELECT seq, model, version, ts, passed, report FROM evaluations WHERE model = ?"
        params: list[Any] = [model]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        sql += " ORDER BY ts DESC, seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_stored(row) for row in self.conn().execute(sql, params)]

    def __enter__(self) -> EvaluationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored(row: tuple) -> StoredEvaluation:
    seq, model, version, ts, passed, report = row
    return StoredEvaluation(seq, model, version, ts, bool(passed), orjson.loads(report))
