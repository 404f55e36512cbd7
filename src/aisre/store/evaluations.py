"""Offline evaluation results in the inference log's SQLite file: one row per `aisre eval` run, never updated.

The report is kept whole as JSON (every check with its value, interval and threshold), so a gate decision
can be explained later from the row alone; `passed` sits in its own column so the gate needs no JSON.
The newest row of a (model, version) is the one that counts: an evaluation that failed after one that
passed (new golden data, stricter thresholds) closes the gate again.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from aisre.errors import StoreError
from aisre.store.sqlite import SQLiteStore

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


class EvaluationStore:
    """The `evaluations` table of a store; `store` is a `SQLiteStore` or a path / `sqlite:///` URL."""

    def __init__(self, store: SQLiteStore | str | os.PathLike[str]) -> None:
        self._owns_store = not isinstance(store, SQLiteStore)
        if isinstance(store, str):
            store = store.removeprefix("sqlite:///")
        self.store = store if isinstance(store, SQLiteStore) else SQLiteStore(store)
        try:
            conn = self.store._conn()
            conn.executescript(_SCHEMA)
            conn.commit()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot create the evaluations table in {self.store.path}: {exc}") from None

    def add(self, model: str, version: str, ts: float, passed: bool, report: dict[str, Any]) -> int:
        """Append one run; returns its sequence number. `report` must be JSON-safe (no NaN)."""
        body = orjson.dumps(report).decode()
        conn = self.store._conn()
        with conn:
            cursor = conn.execute(
                "INSERT INTO evaluations (model, version, ts, passed, report) VALUES (?, ?, ?, ?, ?)",
                (model, version, float(ts), int(passed), body),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def latest(self, model: str, version: str) -> StoredEvaluation | None:
        """The newest run of `model`/`version` (by time, then by insertion), or None if it was never evaluated."""
        row = (
            self.store._conn()
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
        return [_stored(row) for row in self.store._conn().execute(sql, params)]

    def close(self) -> None:
        """Close the store if this object opened it (from a path or URL); a store passed in stays open."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> EvaluationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored(row: tuple) -> StoredEvaluation:
    seq, model, version, ts, passed, report = row
    return StoredEvaluation(seq, model, version, ts, bool(passed), orjson.loads(report))
