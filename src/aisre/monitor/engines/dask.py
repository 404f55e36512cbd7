"""Dask: each partition is profiled on its worker through `map_partitions`; one small object per partition comes back.

The scheduler is whatever Dask would use for `.compute()`: a `distributed.Client` if one is
active (LocalCluster or a real cluster), else Dask's local threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aisre.monitor.engines.common import Codec, PartitionFn
from aisre.monitor.tabular.frame import to_columns


class DaskEngine:
    name = "dask"

    def columns(self, frame: Any) -> list[str]:
        return [str(c) for c in frame.columns]

    def map_partitions(self, frame: Any, columns: Sequence[str], fn: PartitionFn, codec: Codec) -> list[Any]:
        import pandas as pd

        def per_partition(part: Any) -> Any:
            if len(part) == 0:
                return pd.Series([], dtype=object)
            return pd.Series([codec.encode(fn(to_columns(part)))], dtype=object)

        payloads = frame[list(columns)].map_partitions(per_partition, meta=("payload", object)).compute()
        return [codec.decode(p) for p in payloads]
