"""Fallback rules a drill's breakers can name: the simpler, predictable logic an open breaker answers with.

breakers:
  - {model: fraud, version: v1, fallback: {rule: "aisre.drills.rules:radius_rule"}, open_when: [...]}
"""

from __future__ import annotations

from typing import Any

#: Mean radius (in the data set's units) above which a case is called malignant (class 0).
RADIUS_CUTOFF = 15.0


def radius_rule(rows: list[dict[str, Any]]) -> list[int]:
    """One OIP prediction per row: 0 (malignant) when `mean_radius` is above the cutoff, else 1 (benign);
    about 88% accurate on the breast-cancer data, and the same answer for the same input, always."""
    return [0 if float(row.get("mean_radius") or 0.0) > RADIUS_CUTOFF else 1 for row in rows]
