"""Profiles of a Spark or Dask DataFrame: `Reference.profile_of` computed partition by partition.

Each partition is counted into the reference's empty profile (its bins and vocabulary, the
profile's own `update`) and the partition profiles merge with `TableProfile.merge`: the
result equals `reference.profile_of(all rows)` in one process (counts exactly, moments to
float rounding).
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

from aisre.errors import DataError
from aisre.monitor.engines.common import Codec, check_columns, engine_for
from aisre.monitor.profiles.reference import Reference, TableProfile
from aisre.monitor.tabular.frame import Columns


def _profile(columns: Columns, empty: dict[str, Any]) -> TableProfile:
    return TableProfile.from_dict(empty).update(columns)


PROFILES = Codec(
    lambda a, b: a.merge(b),
    lambda p: pickle.dumps(p.to_dict()),
    lambda b: TableProfile.from_dict(pickle.loads(b)),
)


def profile_of(reference: Reference, frame: Any) -> TableProfile:
    """The profile of `frame` (Spark, Dask or local) over the reference's bins and vocabularies."""
    engine = engine_for(frame)
    names = reference.column_names
    check_columns(engine.columns(frame), names, "current")
    empty = reference.empty_profile().to_dict()  # plain data: pickles to the workers with the task
    parts = engine.map_partitions(frame, names, functools.partial(_profile, empty=empty), PROFILES)
    if not parts:
        raise DataError("the current window is empty (0 rows); nothing to profile")
    return functools.reduce(lambda a, b: a.merge(b), parts)
