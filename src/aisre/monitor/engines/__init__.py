"""Monitoring on Spark and Dask: `aisre.drift` over DataFrames too big for one process.

Each partition is profiled where it lives (Spark `mapInArrow`, Dask `map_partitions`) against
bins and vocabularies fixed from the reference; the partial profiles merge on the driver and the
statistics come from the merged profiles (docs/statistics-distributed.md). Neither engine is
imported unless a frame of theirs arrives: `aisre[spark]`, `aisre[dask]`. Also here:
`profile_of(reference, frame)` (a frame's profile over the reference's bins) and
`fairness(frame, y_pred=..., sensitive=..., y_true=...)` (group fairness from merged counts).
"""

from aisre.monitor.engines.common import engine_name, is_distributed
from aisre.monitor.engines.drift import drift
from aisre.monitor.engines.fairness import fairness
from aisre.monitor.engines.profiles import profile_of

__all__ = ["drift", "engine_name", "fairness", "is_distributed", "profile_of"]
