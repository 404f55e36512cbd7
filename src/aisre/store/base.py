"""The store interface: what the writer, the monitor and the CLI need of a backend.

SQLite is the embedded default; other backends (and the Redis-backed shared state of the
gateway) sit beside it by implementing the same small surface.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aisre.records import InferenceRecord, Label


@runtime_checkable
class Sink(Protocol):
    """Anything the batching writer can hand a batch of records to."""

    def write_batch(self, records: Sequence[InferenceRecord], durable: bool) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records a read selects; `since`/`until` are epoch seconds, `until` exclusive."""

    model: str | None = None
    version: str | None = None
    since: float | None = None
    until: float | None = None

    def conditions(self, placeholder: str = "?") -> tuple[list[str], list[Any]]:
        """The filter as SQL conditions on `inferences i` and their parameters (`?` for SQLite, `%s` for psycopg)."""
        parts: list[str] = []
        params: list[Any] = []
        for column, value, op in (
            ("model", self.model, "="),
            ("version", self.version, "="),
            ("ts", self.since, ">="),
            ("ts", self.until, "<"),
        ):
            if value is not None:
                parts.append(f"i.{column} {op} {placeholder}")
                params.append(value)
        return parts, params

    def where_clause(self, placeholder: str = "?") -> tuple[str, list[Any]]:
        """`conditions` as a WHERE clause ("" when the filter selects everything)."""
        parts, params = self.conditions(placeholder)
        return (" WHERE " + " AND ".join(parts) if parts else ""), params


class Store(Sink, Protocol):
    """A sink that can also be read and that keeps labels."""

    def get(self, record_id: str) -> InferenceRecord | None: ...

    def records(
        self,
        where: RecordFilter = RecordFilter(),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[InferenceRecord]: ...

    def iter_records(
        self, where: RecordFilter = RecordFilter(), chunk_size: int = 10_000
    ) -> Iterator[list[InferenceRecord]]: ...

    def labeled_records(
        self, where: RecordFilter = RecordFilter(), only_labeled: bool = True
    ) -> list[tuple[InferenceRecord, Label | None]]: ...

    def count(self, where: RecordFilter = RecordFilter()) -> int: ...

    def add_labels(self, labels: Sequence[Label]) -> None: ...

    def labels_for(self, record_ids: Sequence[str]) -> dict[str, Label]: ...

    def missing_ids(self, record_ids: Sequence[str]) -> list[str]: ...

    def prune(self, older_than: float) -> int: ...
