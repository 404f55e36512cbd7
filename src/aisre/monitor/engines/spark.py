"""Spark: each partition is profiled in its executor through `mapInArrow`; one small row per partition comes back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from aisre.monitor.engines.common import Codec, PartitionFn
from aisre.monitor.tabular.frame import to_columns

_SCHEMA = pa.schema([("payload", pa.binary())])
#: Rows profiled at once inside a partition.
BATCH_ROWS = 200_000


class SparkEngine:
    name = "spark"

    def columns(self, frame: Any) -> list[str]:
        return list(frame.columns)

    def map_partitions(self, frame: Any, columns: Sequence[str], fn: PartitionFn, codec: Codec) -> list[Any]:
        names = list(columns)

        def per_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            # Arrow batches of one partition (10k rows each by default), profiled BATCH_ROWS at a time and
            # merged: an executor holds a slice of the partition, never all of it, and per-slice costs amortise.
            partial, pending, rows = None, [], 0
            for batch in itertools.chain(batches, [None]):
                if batch is not None and batch.num_rows:
                    pending.append(batch)
                    rows += batch.num_rows
                if pending and (batch is None or rows >= BATCH_ROWS):
                    part = fn(to_columns(pa.Table.from_batches(pending).rename_columns(names)))
                    partial = part if partial is None else codec.merge(partial, part)
                    pending, rows = [], 0
            if partial is not None:
                yield pa.RecordBatch.from_pydict({"payload": [codec.encode(partial)]}, schema=_SCHEMA)

        from pyspark.sql import functions as F

        # Plain positional names on the way in (mapInArrow re-resolves every name, and a dot or a backtick in
        # one breaks that), the real names restored on each batch.
        aliased = [F.col("`" + c.replace("`", "``") + "`").alias(f"c{i}") for i, c in enumerate(columns)]
        rows = frame.select(*aliased).mapInArrow(per_partition, "payload binary").collect()
        return [codec.decode(row["payload"]) for row in rows]
