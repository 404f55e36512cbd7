"""Univariate drift detection: one `Method` contract, nine methods, `drift()` over a whole table."""

from aisre.monitor.drift.api import DatasetDrift, drift
from aisre.monitor.drift.auto import auto_method
from aisre.monitor.drift.base import DriftResult, Method
from aisre.monitor.drift.correction import adjust
from aisre.monitor.drift.histogram import PSI, Hellinger, HistogramMethod, JensenShannon
from aisre.monitor.drift.registry import METHODS, MethodError, get_method
from aisre.monitor.drift.stattests import KS, AndersonDarling, ChiSquare, CramerVonMises, ZTest
from aisre.monitor.drift.wasserstein import Wasserstein

__all__ = [
    "KS",
    "METHODS",
    "PSI",
    "AndersonDarling",
    "ChiSquare",
    "CramerVonMises",
    "DatasetDrift",
    "DriftResult",
    "Hellinger",
    "HistogramMethod",
    "JensenShannon",
    "Method",
    "MethodError",
    "Wasserstein",
    "ZTest",
    "adjust",
    "auto_method",
    "drift",
    "get_method",
]
