"""Infinite values: counted apart from missing ones, kept out of the drift test, their share tested on its own.

No rank or distance test is defined on +-inf, so every method drops them (as Evidently does,
silently). Dropping alone hides a failure that matters: a feature that starts overflowing
(half the current rows at inf) would read "no drift" on its finite half. So `drift()` takes
a policy for them, `infinite=`:

- "flag" (default): excluded from the test and counted; the column also drifts when the share
  of infinite values changed (two-proportion z-test, p < 0.05), with a note saying so;
- "drop": excluded and counted, the verdict is the test's alone (Evidently's behaviour);
- "error": any infinite value raises `DataError` naming the column, the side and the count.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

from aisre.errors import InvalidParameterError
from aisre.monitor.drift.base import DriftResult
from aisre.monitor.tabular.frame import DataError

POLICIES = ("flag", "drop", "error")
#: Significance level of the test on the share of infinite values (policy "flag").
SHARE_ALPHA = 0.05


def check_policy(infinite: str) -> None:
    if infinite not in POLICIES:
        raise InvalidParameterError(f"infinite: expected one of {list(POLICIES)}, got {infinite!r}")


def count_infinite(values: np.ndarray) -> int:
    """+-inf values in a normalised column (text columns have none)."""
    if values.dtype.kind != "f":
        return 0
    return int(np.count_nonzero(np.isinf(values)))


def count_missing(values: np.ndarray, n_infinite: int, n_present: int) -> int:
    """Missing values (NaN/None): rows that are neither present (finite) nor infinite."""
    return len(values) - n_present - n_infinite


def refuse(name: str, role: str, n_infinite: int, rows: int) -> DataError:
    return DataError(
        f"column {name!r}: the {role} data has {n_infinite} infinite values in {rows} rows "
        "(infinite='error'); clean them, or pass infinite='flag' (excluded from the test, a changed "
        "share is drift) or infinite='drop' (excluded from the test)"
    )


def share_p_value(inf_ref: int, rows_ref: int, inf_cur: int, rows_cur: int) -> float | None:
    """Two-sided pooled two-proportion z-test of the infinite shares; None when there is nothing to test."""
    if rows_ref == 0 or rows_cur == 0:
        return None
    pooled = (inf_ref + inf_cur) / (rows_ref + rows_cur)
    if pooled in (0.0, 1.0):
        return None  # both shares 0 (or both 1): no difference
    se = math.sqrt(pooled * (1 - pooled) * (1 / rows_ref + 1 / rows_cur))
    z = (inf_cur / rows_cur - inf_ref / rows_ref) / se
    return float(2 * stats.norm.sf(abs(z)))


def with_counts(
    result: DriftResult, policy: str, inf_ref: int, rows_ref: int, inf_cur: int, rows_cur: int
) -> DriftResult:
    """The result with `infinite_reference`/`infinite_current` set, and under "flag" the share test.

    `rows_*` are the non-missing rows (finite + infinite) of each side: the share's denominator.
    """
    details = {**result.details, "infinite_reference": inf_ref, "infinite_current": inf_cur}
    notes = [n for n in details.pop("notes", []) if not n.startswith("infinite values")]
    if notes:
        details["notes"] = notes
    if not (inf_ref or inf_cur):
        return dataclasses.replace(result, details=details)
    shares = (
        f"{inf_ref} of {rows_ref} reference values ({_pct(inf_ref, rows_ref)}) and "
        f"{inf_cur} of {rows_cur} current values ({_pct(inf_cur, rows_cur)}) are infinite"
    )
    drift = result.drift
    p = share_p_value(inf_ref, rows_ref, inf_cur, rows_cur) if policy == "flag" else None
    if policy == "flag" and p is not None:
        details["infinite_share_p_value"] = p
        changed = p < SHARE_ALPHA
        details["infinite_share_drift"] = changed
        verdict = (
            f"the share changed (p={p:.3g} < {SHARE_ALPHA}): reported as drift"
            if changed
            else f"the share did not change significantly (p={p:.3g})"
        )
        drift = drift or changed
    else:
        verdict = "the verdict is the test's alone (infinite='drop')" if policy == "drop" else "nothing to compare"
    note = f"{shares}; they are excluded from the {result.method} test; {verdict}"
    details["note"] = f"{details['note']}; {note}" if "note" in details else note
    return dataclasses.replace(result, drift=bool(drift), details=details)


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "-"
