"""Spark: each partition is profiled in its executor through `mapInArrow`; one small row per partition comes back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from aisre.monitor.engines.common import PartitionFn
from aisre.monitor.engines.partition import decode, encode, merge_partials
from aisre.monitor.tabular.frame import to_columns

_SCHEMA = pa.schema([("payload", pa.binary())])


class SparkEngine:
    name = "spark"

    def columns(self, frame: Any) -> list[str]:
        return list(frame.columns)

    def map_partitions(self, frame: Any, columns: Sequence[str], fn: PartitionFn) -> list[Any]:
        def per_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            # Arrow batches of one partition (10k rows each by default): profiled one at a time and
            # merged, so an executor holds one batch, not the partition.
            partial = None
            for batch in batches:
                if batch.num_rows:
                    part = fn(to_columns(pa.Table.from_batches([batch])))
                    partial = part if partial is None else merge_partials(partial, part)
            if partial is not None:
                yield pa.RecordBatch.from_pydict({"payload": [encode(partial)]}, schema=_SCHEMA)

        quoted = [frame[c] for c in columns]  # column objects: names with dots or spaces stay literal
        rows = frame.select(*quoted).mapInArrow(per_partition, "payload binary").collect()
        return [decode(row["payload"]) for row in rows]
