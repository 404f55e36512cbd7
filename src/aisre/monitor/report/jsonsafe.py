"""JSON every parser accepts: no bare NaN or Infinity, which Python writes by default but JSON forbids.

A missing number (NaN: no statistic, no p-value) becomes null; +-inf becomes the string
"inf"/"-inf" (an unseen category makes chi-square infinite, and that is worth keeping), as
the saved profiles already write their min/max.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced (recursively through dicts, lists and tuples)."""
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text (`allow_nan=False` proves nothing non-finite slipped through)."""
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)
