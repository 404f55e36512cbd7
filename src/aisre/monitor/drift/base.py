"""The one contract every univariate drift method follows (scikit-learn style).

    method = KS(threshold=0.05).fit(reference_values)
    result = method.score(current_values)      # -> DriftResult

Parameters are set in `__init__` and nothing else; `fit` learns from the reference only
(bin edges, sorted sample, category set); `score` compares one current window.
Values arrive already normalised by `aisre.monitor.tabular.frame.normalise`: float64 with NaN for
numeric columns, object arrays of str/None for categorical ones. Missing values are
dropped before testing and counted in the result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import numpy as np

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """The outcome of one test on one column.

    `drift` is `p_value < threshold` for tests (`uses_p_value`), else
    `statistic >= threshold` for distances. `details` holds method-specific extras
    (bin edges, counts, n_reference, n_current, missing, notes about degenerate input).
    """

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drift: bool
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """Base class: subclasses set the class attributes and implement `_fit` and `_score`."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[Kind]]
    uses_p_value: ClassVar[bool]
    default_threshold: ClassVar[float]

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = self.default_threshold if threshold is None else float(threshold)

    def fit(self, reference: np.ndarray) -> Self:
        self._fit(np.asanyarray(reference))  # keeps a TextColumn's encoding
        return self

    def score(self, current: np.ndarray, column: str | None = None) -> DriftResult:
        statistic, p_value, details = self._score(np.asanyarray(current))
        drift = self.is_drift(statistic, p_value)
        return DriftResult(
            self.name,
            float(statistic),
            None if p_value is None else float(p_value),
            self.threshold,
            drift,
            column,
            details,
        )

    def is_drift(self, statistic: float, p_value: float | None) -> bool:
        if self.uses_p_value:
            return p_value is not None and bool(p_value < self.threshold)
        return bool(statistic >= self.threshold)

    @abstractmethod
    def _fit(self, reference: np.ndarray) -> None: ...

    @abstractmethod
    def _score(self, current: np.ndarray) -> tuple[float, float | None, dict[str, Any]]: ...
