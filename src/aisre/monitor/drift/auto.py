"""`method="auto"`: pick a test per column the way Evidently's default does.

Source: evidently 0.7, src/evidently/legacy/calculations/stattests/registry.py
`_get_default_stattest`, with column types as its DataDriftPreset assigns them
(legacy/utils/data_operations.py `process_columns`: numeric dtype = numerical, anything
else categorical; aisre's float64 vs text). After dropping missing values:

    reference rows <= 1000:
        numerical, <= 5 distinct values (reference + current): chisquare if > 2 else z
        numerical, > 5 distinct values:                         ks
        categorical:                                            chisquare if > 2 distinct else z
    reference rows > 1000:
        numerical, <= 5 distinct values:                        jensenshannon
        numerical, > 5 distinct values:                         wasserstein (normalised)
        categorical:                                            jensenshannon

With compat="nannyml" every column gets jensenshannon (UnivariateDriftCalculator's default
for both continuous and categorical columns).
"""

from __future__ import annotations

import numpy as np

from aisre.monitor.drift.values import count_distinct_upto, count_present, prepare

#: Evidently's switch from tests to distances, in non-missing reference rows.
SMALL_REFERENCE = 1000
#: Numerical columns with at most this many distinct values are treated like categories.
FEW_VALUES = 5


def auto_method(
    reference: np.ndarray, current: np.ndarray, compat: str | None = None, n_reference: int | None = None
) -> str:
    """The method name Evidently's default would use for this column (raw, normalised arrays).

    `n_reference`: the non-missing reference count, if the caller already has it.
    """
    if compat == "nannyml":
        return "jensenshannon"
    if reference.dtype.kind != "f":
        if (count_present(reference) if n_reference is None else n_reference) > SMALL_REFERENCE:
            return "jensenshannon"
        ref, cur = prepare(reference, "reference"), prepare(current, "current")
        return "chisquare" if count_distinct_upto([ref.values, cur.values], 2) > 2 else "z"
    ref, cur = prepare(reference, "reference"), prepare(current, "current")
    small = ref.n <= SMALL_REFERENCE
    n_values = count_distinct_upto([ref.values, cur.values], FEW_VALUES)
    if n_values <= FEW_VALUES:
        if not small:
            return "jensenshannon"
        return "chisquare" if n_values > 2 else "z"
    return "ks" if small else "wasserstein"
