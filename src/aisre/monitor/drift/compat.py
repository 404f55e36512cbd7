"""How Evidently (0.7, legacy stattests) and NannyML (0.13, univariate drift) bin and score a column.

Used only with `compat="evidently"` / `compat="nannyml"`; each function cites the peer's source.
"""

from __future__ import annotations

import math

import numpy as np

from aisre.monitor.drift.binning import evidently_fill_zeroes
from aisre.monitor.drift.values import Values, align, category_counts, count_distinct_upto

MODES = ("evidently", "nannyml")

#: Evidently's default thresholds where they differ from aisre's (anderson_darling_stattest.py,
#: cramer_von_mises_stattest.py: default_threshold=0.1).
EVIDENTLY_THRESHOLDS = {"anderson": 0.1, "cramervonmises": 0.1}


def evidently_is_numerical(ref: Values, cur: Values) -> bool:
    """Evidently's column type in its DataDriftPreset (legacy/utils/data_operations.py `process_columns`):
    every numeric dtype is Numerical, everything else (text, bool) Categorical -- the same split as
    aisre's normalised float64 vs object columns. (The 0.7 `Dataset` API infers differently:
    int columns with few values become categorical there; aisre follows the preset.)
    """
    return ref.kind == "numeric"


def evidently_binned_shares(
    ref: Values, cur: Values, numerical: bool, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """legacy/calculations/stattests/utils.py `get_binned_data`.

    Numerical with > 20 unique reference values: Sturges bins on reference+current pooled,
    np.histogram shares. Otherwise one bin per distinct value (union of both windows).
    `fill_zeroes` (PSI, KL; not Jensen-Shannon): see binning.evidently_fill_zeroes.
    """
    if numerical and count_distinct_upto([ref.values], 20) > 20:
        bins = _sturges_edges(np.concatenate([ref.values, cur.values]))
        ref_p = np.histogram(ref.values, bins)[0] / ref.n
        cur_p = np.histogram(cur.values, bins)[0] / cur.n
    else:
        _, ref_counts, cur_counts = align(*category_counts(ref), *category_counts(cur))
        ref_p = ref_counts / ref.n
        cur_p = cur_counts / cur.n
    if fill_zeroes:
        ref_p, cur_p = evidently_fill_zeroes(ref_p), evidently_fill_zeroes(cur_p)
    return ref_p, cur_p


def evidently_hellinger(ref: Values, cur: Values, numerical: bool) -> float:
    """legacy/calculations/stattests/hellinger_distance.py `_hellinger_distance`.

    Categorical: sqrt(1 - sum sqrt(p_i q_i)) over the union of categories. Numerical:
    Sturges bins over the *distinct* pooled values (so the bin count follows the number of
    distinct values, not rows), densities times the mean bin width in place of shares.
    """
    if not numerical:
        _, ref_counts, cur_counts = align(*category_counts(ref), *category_counts(cur))
        overlap = float(np.sum(np.sqrt((ref_counts / ref.n) * (cur_counts / cur.n))))
    else:
        keys = np.unique(np.concatenate([ref.values, cur.values]))
        bins = _sturges_edges(keys)
        h1 = np.histogram(ref.values, bins=bins, density=True)[0]
        h2 = np.histogram(cur.values, bins=bins, density=True)[0]
        bin_width = (max(bins) - min(bins)) / (len(bins) - 1)
        overlap = float(np.sum(np.sqrt(h1 * h2) * bin_width))
    return math.sqrt(1 - float(np.clip(overlap, 0, 1)))


def nannyml_shares(ref: Values, cur: Values) -> tuple[np.ndarray, np.ndarray]:
    """nannyml/drift/univariate/methods.py, Continuous/Categorical JensenShannonDistance and
    HellingerDistance (same binning).

    Continuous (numeric dtype): Doane bins fitted on the reference only; categorical (text):
    the reference's categories. Current values outside the reference bins or categories go to
    one extra "leftover" bin (reference share 0), added when 1 - sum(current shares) > 0.
    """
    if ref.kind == "numeric":
        bins = np.histogram_bin_edges(ref.values, bins="doane")
        ref_p = np.histogram(ref.values, bins=bins)[0] / ref.n
        cur_p = np.histogram(cur.values, bins=bins)[0] / cur.n
    else:
        labels, ref_counts = category_counts(ref)
        order = sorted(range(len(labels)), key=labels.__getitem__)  # np.unique order, as NannyML
        labels, ref_counts = [labels[i] for i in order], ref_counts[order]
        _, ref_counts, cur_counts = align(labels, ref_counts, *category_counts(cur))
        ref_p = ref_counts[: len(labels)] / ref.n
        cur_p = cur_counts[: len(labels)] / cur.n
    leftover = 1 - np.sum(cur_p)
    if leftover > 0:
        cur_p = np.append(cur_p, leftover)
        ref_p = np.append(ref_p, 0)
    return ref_p, cur_p


def _sturges_edges(values: np.ndarray) -> np.ndarray:
    """np.histogram_bin_edges(values, "sturges") on float64 values.

    Known gap: numpy (>= 2.1) widens automatic bins to >= 1 for *integer* dtypes, so on an
    int column Evidently's edges differ; aisre only sees float64 and cannot tell an int
    column from a float one with whole numbers (see docs/statistics.md).
    """
    return np.histogram_bin_edges(values, bins="sturges")
