"""Late labels: which already-checked windows gained (or changed) labels since their last check.

A label's `ts` is whatever its writer passed (the arrival time by default, but a backfill may
stamp the prediction's time), so "labels newer than the last run" would miss backfills. Instead
each window's labels get a fingerprint, (number of labelled records, newest label ts), taken
just before its label checks run and stored with their results as a store-only
`window_labels{monitor, scope=job, fingerprint}` signal (value: the number of labelled records).
A later run recomputes the fingerprint of every window checked within `labels_within`; a window
whose fingerprint differs is checked again. A corrected label (`INSERT OR REPLACE` with a new ts)
changes the fingerprint too. The SQL reads the store's connection (SQLite) or `_fetch` (PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aisre.records import Signal
from aisre.store import ranges
from aisre.store.base import RecordFilter

WINDOW_LABELS = "window_labels"


@dataclass(frozen=True)
class Fingerprint:
    """How many records of a window have a label, and the newest label's ts (None: no label)."""

    labelled: int
    newest: float | None

    def text(self) -> str:
        return f"{self.labelled}:{'' if self.newest is None else repr(self.newest)}"


def fingerprint(store: Any, model: str, version: str | None, since: float, until: float) -> Fingerprint:
    """The labels of the records of `model` (`version`: None for all) with since <= ts < until."""
    if getattr(store, "dialect", "sqlite") == "postgresql":
        return _fingerprint_postgresql(store, model, version, since, until)
    conn = store._conn()  # noqa: SLF001 - read-only SQL
    sql = (
        "SELECT count(*), max(l.ts) FROM inferences i JOIN labels l ON l.record_id = i.id "
        "WHERE i.model = ? AND i.version = ? AND i.ts >= ? AND i.ts < ?"
    )
    count, newest = 0, None
    # one (model, version, ts) index range per version: without a version SQLite would walk the whole model
    for part in ranges.split(conn, RecordFilter(model, version, since, until)):
        n, last = conn.execute(sql, [model, part.version, since, until]).fetchone()
        count += n
        newest = last if newest is None or (last is not None and last > newest) else newest
    return Fingerprint(int(count), None if newest is None else float(newest))


def _fingerprint_postgresql(store: Any, model: str, version: str | None, since: float, until: float) -> Fingerprint:
    # PostgreSQL's planner uses the (model, version, ts) index for a whole model too: one query, no split.
    sql = (
        "SELECT count(*), max(l.ts) FROM inferences i JOIN labels l ON l.record_id = i.id "
        "WHERE i.model = %s AND (%s::text IS NULL OR i.version = %s) AND i.ts >= %s AND i.ts < %s"
    )
    [(count, newest)] = store._fetch("reading a window's labels", sql, (model, version, version, since, until))
    return Fingerprint(int(count), None if newest is None else float(newest))


def marker(job: str, model: str, version: str, since: float, until: float, seen: Fingerprint) -> Signal:
    """The store-only record of the labels a window's label checks saw."""
    return Signal(
        model=model,
        version=version,
        name=WINDOW_LABELS,
        value=float(seen.labelled),
        labels={"monitor": job, "scope": "job", "fingerprint": seen.text()},
        window_start=since,
        window_end=until,
    )


def checked_windows(store: Any, model: str, job: str, horizon: float) -> dict[tuple[float, float], str]:
    """(window_start, window_end) -> the fingerprint its latest label check saw, for the job's windows
    checked since `horizon` (epoch seconds; a window is checked after it ends, so this covers every
    window that ended at or after `horizon`)."""
    out: dict[tuple[float, float], str] = {}
    for _, s in store.signals(model=model, name=WINDOW_LABELS, since=horizon):  # oldest first: the newest wins
        if s.labels.get("monitor") != job or s.window_start is None or s.window_end is None:
            continue
        if s.window_end >= horizon:
            out[(s.window_start, s.window_end)] = s.labels.get("fingerprint", "")
    return out
