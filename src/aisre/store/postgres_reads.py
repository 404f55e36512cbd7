"""The read side of `PostgresStore`: the same queries as `SQLiteStore`'s, in the same (ts, seq) order.

A mixin: `PostgresStore` supplies `_fetch` (one query, errors as `StoreError`), `_url`, `_errors`
and `connect_timeout_s`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from aisre.records import InferenceRecord, Label, Signal
from aisre.store.base import RecordFilter
from aisre.store.codec import COLUMNS, loads, row_to_record, rows_to_signals, signals_query

_SELECT = f"SELECT {', '.join('i.' + c for c in COLUMNS)} FROM inferences i"


class PostgresReads:
    """Record, label, signal and window reads of a PostgreSQL store."""

    _url: str
    _psycopg: Any
    connect_timeout_s: float

    def _fetch(self, doing: str, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def get(self, record_id: str) -> InferenceRecord | None:
        rows = self._fetch("reading a record", f"{_SELECT} WHERE i.id = %s", (record_id,))
        return row_to_record(rows[0]) if rows else None

    def missing_ids(self, record_ids: Sequence[str]) -> list[str]:
        wanted = list(dict.fromkeys(record_ids))
        found = {r for (r,) in self._fetch("reading ids", "SELECT id FROM inferences WHERE id = ANY(%s)", (wanted,))}
        return [i for i in wanted if i not in found]

    def labels_for(self, record_ids: Sequence[str]) -> dict[str, Label]:
        """The labels of the given records that have one, by record id."""
        rows = self._fetch(
            "reading labels", "SELECT record_id, ts, value FROM labels WHERE record_id = ANY(%s)", (list(record_ids),)
        )
        return {rid: Label(rid, loads(value), ts) for rid, ts, value in rows}

    def records(
        self,
        where: RecordFilter = RecordFilter(),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[InferenceRecord]:
        clause, params = where.where_clause("%s")
        order = "DESC" if newest_first else "ASC"
        sql = f"{_SELECT}{clause} ORDER BY i.ts {order}, i.seq {order}"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        return [row_to_record(r) for r in self._fetch("reading records", sql, params)]

    def iter_records(
        self, where: RecordFilter = RecordFilter(), chunk_size: int = 10_000
    ) -> Iterator[list[InferenceRecord]]:
        """Records in (ts, seq) order, `chunk_size` at a time, through a server-side cursor on its own connection."""
        clause, params = where.where_clause("%s")
        with self._errors("opening a cursor"):
            conn = self._psycopg.connect(self._url, connect_timeout=max(1, int(self.connect_timeout_s)))
        try:
            with self._errors("reading records"), conn.cursor(name="aisre_iter") as cur:
                cur.itersize = chunk_size
                cur.execute(f"{_SELECT}{clause} ORDER BY i.ts, i.seq", params)
                while rows := cur.fetchmany(chunk_size):
                    yield [row_to_record(r) for r in rows]
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def labeled_records(
        self, where: RecordFilter = RecordFilter(), only_labeled: bool = True
    ) -> list[tuple[InferenceRecord, Label | None]]:
        clause, params = where.where_clause("%s")
        join = "JOIN" if only_labeled else "LEFT JOIN"
        sql = (
            f"SELECT {', '.join('i.' + c for c in COLUMNS)}, l.ts, l.value, l.record_id "
            f"FROM inferences i {join} labels l ON l.record_id = i.id{clause} ORDER BY i.ts, i.seq"
        )
        n = len(COLUMNS)
        out: list[tuple[InferenceRecord, Label | None]] = []
        for row in self._fetch("reading labelled records", sql, params):
            label = None if row[n + 2] is None else Label(row[n + 2], loads(row[n + 1]), row[n])
            out.append((row_to_record(row[:n]), label))
        return out

    def count(self, where: RecordFilter = RecordFilter()) -> int:
        clause, params = where.where_clause("%s")
        return int(self._fetch("counting records", f"SELECT count(*) FROM inferences i{clause}", params)[0][0])

    def signals(
        self,
        model: str | None = None,
        name: str | None = None,
        since: float | None = None,
        version: str | None = None,
    ) -> list[tuple[float, Signal]]:
        """Stored signals as (computed_at, signal), oldest first."""
        sql, params = signals_query("%s", model, name, since, version)
        return rows_to_signals(self._fetch("reading signals", sql, params))

    def model_versions(self) -> list[tuple[str, str, int]]:
        """(model, version, records) of everything stored, sorted."""
        sql = "SELECT model, version, count(*) FROM inferences GROUP BY model, version ORDER BY model, version"
        return [(m, v, int(n)) for m, v, n in self._fetch("listing models", sql)]

    def label_count(self) -> int:
        return int(self._fetch("counting labels", "SELECT count(*) FROM labels")[0][0])

    def latency_rows(
        self, where: RecordFilter = RecordFilter()
    ) -> Iterator[tuple[str, str, str, float | None, float | None]]:
        """(model, version, status, latency_s, cost_usd) for summaries."""
        clause, params = where.where_clause("%s")
        sql = f"SELECT i.model, i.version, i.status, i.latency_s, i.cost_usd FROM inferences i{clause}"
        yield from self._fetch("reading latencies", sql, params)

    def key_rows(
        self, where: RecordFilter = RecordFilter()
    ) -> Iterator[tuple[str | None, str, str, float | None, int | None, int | None]]:
        """(key_id, model, status, cost_usd, input_tokens, output_tokens) for spend summaries.

        The token counts are read from the JSON body in Python: `body` is TEXT, and casting it to
        JSONB in SQL would fail on the rare body holding a `\\u0000` escape."""
        clause, params = where.where_clause("%s")
        sql = f"SELECT i.key_id, i.model, i.status, i.cost_usd, i.body FROM inferences i{clause}"
        for key_id, model, status, cost, body in self._fetch("reading spend", sql, params):
            b = loads(body)
            yield key_id, model, status, cost, b.get("input_tokens"), b.get("output_tokens")

    # The monitoring jobs' window readers (SQLite: aisre.store.ranges); the planner uses the index here.
    def versions_between(self, model: str, since: float | None = None, until: float | None = None) -> list[str]:
        """The versions of `model` with a record in `[since, until)`, sorted."""
        clause, params = RecordFilter(model, None, since, until).where_clause("%s")
        sql = f"SELECT DISTINCT i.version FROM inferences i{clause} ORDER BY i.version"
        return [v for (v,) in self._fetch("listing versions", sql, params)]

    def indexed_count(self, where: RecordFilter = RecordFilter()) -> int:
        return self.count(where)

    def indexed_records(self, where: RecordFilter = RecordFilter()) -> list[InferenceRecord]:
        return self.records(where)

    def body_lines(self, where: RecordFilter = RecordFilter()) -> bytes:
        """The JSON body of each record `where` selects, one per line, in the order of `records(where)`."""
        clause, params = where.where_clause("%s")
        rows = self._fetch("reading bodies", f"SELECT i.body FROM inferences i{clause} ORDER BY i.ts, i.seq", params)
        return "\n".join(b for (b,) in rows).encode()

    def nth_records(
        self,
        where: RecordFilter,
        offset: int,
        *,
        start: tuple[float, int] | None = None,
        limit: int = 1,
        newest_first: bool = False,
    ) -> list[tuple[float, int]]:
        """(ts, seq) of the records at positions `offset`.. in the order of `records(where, newest_first=...)`,
        counted from the record `start` (a (ts, seq) key, included)."""
        if offset < 0 or limit < 1:
            return []
        clause, params = where.where_clause("%s")
        order = "DESC" if newest_first else "ASC"
        if start is not None:
            cmp = "<=" if newest_first else ">="
            clause += (" AND " if clause else " WHERE ") + f"(i.ts, i.seq) {cmp} (%s, %s)"
            params = [*params, start[0], start[1]]
        sql = (
            f"SELECT i.ts, i.seq FROM inferences i{clause} ORDER BY i.ts {order}, i.seq {order}"
            f" LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        return [(float(ts), int(seq)) for ts, seq in self._fetch("finding a window", sql, params)]
