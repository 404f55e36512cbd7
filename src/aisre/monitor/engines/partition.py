"""What runs where the data lives: one batch of columns -> a partial summary; partials merge on the driver.

Per numeric column the partial is a `NumericProfile` over edges the driver fixed beforehand
(the profile's own update and merge: counts per bin, missing, infinite, Chan moments, min/max,
the KLL sketch), plus what drift needs beyond the profile: the count of -inf (the profile
counts +-inf together; the drift bins leave both out), the exact value counts while the
column has few distinct values (the auto choice needs them; up to EXACT_VALUE_LIMIT when the
column's method compares value by value or ranks: chi-square, Z, L-infinity, Anderson-Darling,
Cramer-von Mises), and,
when asked, the values inside a few narrow ranges with the count below each (exact
quantiles by selection). Per categorical column it is the exact count of every category:
a fixed vocabulary with an "other" bucket would not give the one-machine statistics, which
bin over the union of both windows' categories.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.errors import DataError
from aisre.monitor.engines.common import Codec
from aisre.monitor.profiles.profile import NumericProfile, category_counts
from aisre.monitor.tabular.frame import Columns

#: Value counts are kept while a column has at most this many distinct finite values.
VALUE_LIMIT = 64
#: ... or this many, for a column whose method needs every distinct value (a plan's `value_limit`).
EXACT_VALUE_LIMIT = 65_536


@dataclass(frozen=True)
class ColumnPlan:
    """What to compute for one numeric column (categorical columns always get exact counts)."""

    edges: tuple[float, ...] = (float("inf"),)
    sketch: bool = False
    brackets: tuple[tuple[float, float], ...] = ()
    #: Keep exact value counts up to this many distinct finite values (0: none, the scans already have them).
    value_limit: int = VALUE_LIMIT


@dataclass
class NumericPart:
    profile: NumericProfile
    neginf: int
    values: dict[float, int] | None
    below: list[int]
    inside: list[np.ndarray]
    #: Sum of the finite values in each of the profile's bins (grid plans only): W1 is exact where D keeps one sign.
    sums: np.ndarray | None = None
    #: The cap `values` was kept under, and the distinct finite values seen: exact while `values` is kept,
    #: else a lower bound (the most any one partial or merge held when it passed the cap).
    limit: int = VALUE_LIMIT
    distinct: int = 0

    @property
    def present(self) -> int:
        return self.profile.n + self.profile.infinite


@dataclass
class CategoricalPart:
    counts: dict[str, int]
    missing: int

    @property
    def present(self) -> int:
        return sum(self.counts.values())


def summarise(columns: Columns, plans: dict[str, ColumnPlan]) -> dict[str, Any]:
    """The partial summary of one batch: {"rows": n, "columns": {name: NumericPart | CategoricalPart}}."""
    out: dict[str, Any] = {}
    rows = 0
    for name, plan in plans.items():
        values = columns[name]
        rows = len(values)
        if values.dtype.kind == "f":
            out[name] = _numeric(values, plan)
        else:
            counts = category_counts(values)
            missing = counts.pop(None, 0)
            out[name] = CategoricalPart({str(k): int(v) for k, v in counts.items()}, int(missing))
    return {"rows": rows, "columns": out}


def _numeric(values: np.ndarray, plan: ColumnPlan) -> NumericPart:
    profile = NumericProfile(np.asarray(plan.edges, dtype=np.float64))
    if plan.sketch:
        profile = NumericProfile.empty_like(profile, quantiles=True)
    profile.update(values)
    finite = values[np.isfinite(values)]
    below = [int(np.count_nonzero(finite < lo)) for lo, _ in plan.brackets]
    inside = [finite[(finite >= lo) & (finite <= hi)] for lo, hi in plan.brackets]
    sums = None
    if len(plan.edges) > 1:  # a grid (it ends with +inf, which no finite value equals: the profile's bins)
        index = np.searchsorted(profile.edges, finite, side="right")
        sums = np.bincount(index, weights=finite, minlength=len(profile.edges) + 1)
    neginf = int(np.count_nonzero(values == -np.inf))
    counts, distinct = _value_counts(finite, plan.value_limit)
    return NumericPart(profile, neginf, counts, below, inside, sums, plan.value_limit, distinct)


def _value_counts(finite: np.ndarray, limit: int) -> tuple[dict[float, int] | None, int]:
    """(exact counts per distinct value or None past `limit`, distinct values seen); a sample decides
    most continuous columns first, without a full sort."""
    if limit <= 0:
        return None, 0
    sample = len(np.unique(finite[:2048]))
    if sample > limit:
        return None, sample
    labels, counts = np.unique(finite, return_counts=True)
    if len(labels) > limit:
        return None, len(labels)
    return dict(zip(labels.tolist(), counts.tolist(), strict=True)), len(labels)


def merge_partials(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    columns = {}
    for name, part in a["columns"].items():
        try:
            columns[name] = merge_column(part, b["columns"][name])
        except TypeError:
            raise DataError(
                f"column {name!r} holds numbers in some partitions and text in others; "
                "give it one type (cast it) or exclude it with columns=[...]"
            ) from None
    return {"rows": a["rows"] + b["rows"], "columns": columns}


def merge_column(a: Any, b: Any) -> Any:
    """Merge two partials of one column; a side with no values at all takes the other's kind."""
    if type(a) is not type(b):
        empty, full = (a, b) if a.present == 0 else (b, a)
        if empty.present:  # both kinds hold values: the caller reports the mismatch
            raise TypeError("mixed kinds")
        missing = empty.profile.missing if isinstance(empty, NumericPart) else empty.missing
        if isinstance(full, CategoricalPart):
            return CategoricalPart(dict(full.counts), full.missing + missing)
        profile = full.profile.merge(NumericProfile.empty_like(full.profile))
        profile.missing += missing
        return NumericPart(
            profile, full.neginf, full.values, list(full.below), list(full.inside), full.sums, full.limit, full.distinct
        )
    if isinstance(a, CategoricalPart):
        counts = dict(a.counts)
        for key, n in b.counts.items():
            counts[key] = counts.get(key, 0) + n
        return CategoricalPart(counts, a.missing + b.missing)
    values, limit = None, max(a.limit, b.limit)
    distinct = max(a.distinct, b.distinct)
    if a.values is not None and b.values is not None:
        small, large = sorted((a.values, b.values), key=len)
        values = dict(large)
        for key, n in small.items():
            values[key] = values.get(key, 0) + n
        distinct = len(values)
        values = values if distinct <= limit else None
    return NumericPart(
        a.profile.merge(b.profile),
        a.neginf + b.neginf,
        values,
        [x + y for x, y in zip(a.below, b.below, strict=True)],
        [np.concatenate([x, y]) for x, y in zip(a.inside, b.inside, strict=True)],
        None if a.sums is None or b.sums is None else a.sums + b.sums,
        limit,
        distinct,
    )


def merge_all(partials: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not partials:
        return None
    out = partials[0]
    for p in partials[1:]:
        out = merge_partials(out, p)
    return out


def encode(partial: dict[str, Any]) -> bytes:
    """Pickle a partial for the trip to the driver (the KLL sketch travels in its own serial form)."""
    columns = {}
    for name, part in partial["columns"].items():
        if isinstance(part, NumericPart):
            profile = part.profile.to_dict()
            part = NumericPart(
                profile,  # type: ignore[arg-type]
                part.neginf,
                part.values,
                part.below,
                part.inside,
                part.sums,
                part.limit,
                part.distinct,
            )
        columns[name] = part
    return pickle.dumps({"rows": partial["rows"], "columns": columns})


def decode(payload: bytes) -> dict[str, Any]:
    partial = pickle.loads(payload)
    for part in partial["columns"].values():
        if isinstance(part, NumericPart):
            part.profile = NumericProfile.from_dict(part.profile)  # type: ignore[arg-type]
    return partial


#: How drift partials merge and travel.
PARTIALS = Codec(merge_partials, encode, decode)
