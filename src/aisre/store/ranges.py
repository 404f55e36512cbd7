"""Reads of a time window of one model that touch only its (model, version, ts) index ranges.

A window of a model *without* a version (`RecordFilter(model, None, since, until)`) cannot use
the `(model, version, ts)` index past `model`: SQLite walks every record of the model (10M
on a big store) to find the few in the window, and sorts them to order by time. These reads
first find the model's versions with a skip scan (one index seek per version, a recursive
CTE), then read one index range per version: their cost follows the window, not the store.
Positions are counted in `(ts, seq)` order, the order of `SQLiteStore.records`; a position is
found with OFFSET on the index (C speed, no row leaves SQLite), and a `start` key `(ts, seq)`
lets the next window be found from the previous one instead of from the store's first record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from aisre.store.base import RecordFilter

Key = tuple[float, int]  # (ts, seq) of one record: its place in time order

_VERSIONS = (
    "WITH RECURSIVE v(version) AS ("
    " SELECT min(version) FROM inferences WHERE model = ?1"
    " UNION ALL SELECT (SELECT min(version) FROM inferences WHERE model = ?1 AND version > v.version)"
    " FROM v WHERE v.version IS NOT NULL)"
    " SELECT version FROM v WHERE version IS NOT NULL AND EXISTS"
    " (SELECT 1 FROM inferences i WHERE i.model = ?1 AND i.version = v.version{ts})"
)


def versions(conn: sqlite3.Connection, model: str, since: float | None, until: float | None) -> list[str]:
    """The versions of `model` with at least one record in `[since, until)`, sorted."""
    ts, params = _ts_range(since, until, first=2)
    return [v for (v,) in conn.execute(_VERSIONS.format(ts=ts), [model, *params])]


def split(conn: sqlite3.Connection, where: RecordFilter) -> list[RecordFilter]:
    """`where` as one filter per stored version when it names a model but no version (each then reads
    one index range); unchanged otherwise. Empty when the model has no record in the window."""
    if where.model is None or where.version is not None:
        return [where]
    return [
        RecordFilter(where.model, v, where.since, where.until)
        for v in versions(conn, where.model, where.since, where.until)
    ]


def count(conn: sqlite3.Connection, where: RecordFilter) -> int:
    """The number of records `where` selects: one index range count per version."""
    total = 0
    for part in split(conn, where):
        clause, params = _clause(part, None, False)
        total += conn.execute(f"SELECT count(*) FROM inferences i{clause}", params).fetchone()[0]
    return total


def rows(conn: sqlite3.Connection, where: RecordFilter, columns: str) -> list[tuple[Any, ...]]:
    """`columns` (SQL, of the table aliased `i`) of each record `where` selects, in (ts, seq) order."""
    parts = split(conn, where)
    if not parts:
        return []
    if len(parts) == 1:
        clause, params = _clause(parts[0], None, False)
        return conn.execute(f"SELECT {columns} FROM inferences i{clause} ORDER BY i.ts, i.seq", params).fetchall()
    # several versions: one index range each (version IN ...), merged into time order by SQLite
    marks = ",".join("?" * len(parts))
    clause, params = _clause(RecordFilter(where.model, None, where.since, where.until), None, False)
    sql = f"SELECT {columns} FROM inferences i{clause} AND i.version IN ({marks}) ORDER BY i.ts, i.seq"
    return conn.execute(sql, [*params, *(p.version for p in parts)]).fetchall()


def nth(
    conn: sqlite3.Connection,
    where: RecordFilter,
    offset: int,
    *,
    start: Key | None = None,
    limit: int = 1,
    newest_first: bool = False,
) -> list[Key]:
    """The keys of the records at positions `offset` .. `offset + limit - 1` (0-based) among those
    `where` selects, in (ts, seq) order (reversed with `newest_first`), counting from the record
    `start` (included; None: from the first). Fewer (or none) when the window holds fewer."""
    if offset < 0 or limit < 1:
        return []
    order = "DESC" if newest_first else "ASC"
    parts = split(conn, where)
    pieces: list[tuple[str, list[Any]]] = []
    for part in parts:
        clause, params = _clause(part, start, newest_first)
        pieces.append((f"SELECT i.ts, i.seq FROM inferences i{clause} ORDER BY i.ts {order}, i.seq {order}", params))
    if not pieces:
        return []
    if len(pieces) == 1:
        sql, params = pieces[0]
    else:  # the first offset+limit of each version's range, merged: no version's range is read further
        sql = " UNION ALL ".join(f"SELECT * FROM ({s} LIMIT {offset + limit})" for s, _ in pieces)
        sql = f"SELECT * FROM ({sql}) ORDER BY ts {order}, seq {order}"
        params = [p for _, ps in pieces for p in ps]
    rows = conn.execute(f"{sql} LIMIT {int(limit)} OFFSET {int(offset)}", params)
    return [(float(ts), int(seq)) for ts, seq in rows]


def _ts_range(since: float | None, until: float | None, first: int) -> tuple[str, list[float]]:
    """` AND i.ts >= ?N AND i.ts < ?M` for the bounds given; parameters numbered from `first`."""
    sql, params = "", list[float]()
    for bound, op in ((since, ">="), (until, "<")):
        if bound is not None:
            sql += f" AND i.ts {op} ?{first + len(params)}"
            params.append(bound)
    return sql, params


def _clause(where: RecordFilter, start: Key | None, newest_first: bool) -> tuple[str, list[Any]]:
    """The WHERE clause of one index range, beginning at `start` ((ts, seq), included) if given."""
    parts, params = where.conditions()
    if start is not None:  # keyset: the ts bound uses the index, the seq test only sorts out equal ts
        ts, seq = start
        op, before = ("<=", ">") if newest_first else (">=", "<")
        parts.append(f"i.ts {op} ? AND NOT (i.ts = ? AND i.seq {before} ?)")
        params += [ts, ts, seq]
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


__all__: Sequence[str] = ["Key", "count", "nth", "rows", "split", "versions"]
