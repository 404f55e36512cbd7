"""Which engine holds a frame, and the one thing every engine does: run a function on each partition.

A frame is recognised by the module of its type, never by importing pyspark or dask: a process
without them never pays for (or fails on) the import. `engine_for(frame)` returns an engine whose
`map_partitions(frame, columns, fn)` calls `fn(columns_of_one_batch) -> partial` where the data
lives and returns the partials to the driver; the caller merges them (the profiles merge).
A local table (pandas, pyarrow, ...) is one partition, profiled in process, so a distributed
current window can be compared with a local reference and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aisre.errors import DataError, MissingDependencyError
from aisre.monitor.tabular.frame import Columns, to_columns

#: fn(normalised columns of one batch) -> a partial summary.
PartitionFn = Callable[[Columns], Any]


@dataclass(frozen=True)
class Codec:
    """How partials of one kind merge (inside a partition, batch by batch) and travel to the driver."""

    merge: Callable[[Any, Any], Any]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


class Engine(Protocol):
    name: str

    def columns(self, frame: Any) -> list[str]: ...

    def map_partitions(self, frame: Any, columns: Sequence[str], fn: PartitionFn, codec: Codec) -> list[Any]: ...


def engine_name(frame: Any) -> str | None:
    """ "spark", "dask" or None (a local table), from the type's module alone."""
    module = type(frame).__module__
    if module.startswith("pyspark.sql") and type(frame).__name__ == "DataFrame":
        return "spark"
    if (module.startswith("dask.dataframe") or module.startswith("dask_expr")) and type(frame).__name__ == "DataFrame":
        return "dask"
    return None


def is_distributed(frame: Any) -> bool:
    """True for a Spark or Dask DataFrame (without importing either)."""
    return engine_name(frame) is not None


def engine_for(frame: Any) -> Engine:
    name = engine_name(frame)
    if name == "spark":
        _require("pyspark", "spark", "monitoring a Spark DataFrame")
        from aisre.monitor.engines.spark import SparkEngine

        return SparkEngine()
    if name == "dask":
        _require("dask.dataframe", "dask", "monitoring a Dask DataFrame", package="dask")
        from aisre.monitor.engines.dask import DaskEngine

        return DaskEngine()
    return LocalEngine()


def _require(module: str, extra: str, feature: str, package: str | None = None) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package or module, extra, feature) from exc


class LocalEngine:
    """A table in this process: one partition, normalised once however many passes read it."""

    name = "local"

    def __init__(self) -> None:
        self._frame: Any = None
        self._columns: Columns = {}

    def _normalised(self, frame: Any) -> Columns:
        if frame is not self._frame:
            self._frame, self._columns = frame, to_columns(frame)
        return self._columns

    def columns(self, frame: Any) -> list[str]:
        return list(self._normalised(frame))

    def map_partitions(self, frame: Any, columns: Sequence[str], fn: PartitionFn, codec: Codec) -> list[Any]:
        every = self._normalised(frame)
        data = {c: every[c] for c in columns}
        if not data or len(next(iter(data.values()))) == 0:
            return []
        return [fn(data)]


def check_columns(available: Sequence[str], wanted: Sequence[str], role: str) -> None:
    absent = [c for c in wanted if c not in available]
    if absent:
        raise DataError(
            f"columns {absent} are not in the {role} data; it has: {list(available)[:20]}"
            + (" (the reference's columns are compared unless columns=[...] is given)" if role == "current" else "")
        )
