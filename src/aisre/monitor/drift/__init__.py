"""Univariate drift detection: one `Method` contract, ten methods, `drift()` over a whole table, thresholds."""

from aisre.monitor.drift.api import DatasetDrift, drift
from aisre.monitor.drift.auto import auto_method
from aisre.monitor.drift.base import DriftResult, Method
from aisre.monitor.drift.correction import adjust
from aisre.monitor.drift.histogram import PSI, Hellinger, HistogramMethod, JensenShannon, LInfinity
from aisre.monitor.drift.registry import ALL_METHODS, METHODS, MethodError, get_method
from aisre.monitor.drift.stattests import KS, AndersonDarling, ChiSquare, CramerVonMises, ZTest
from aisre.monitor.drift.thresholds import ConstantThreshold, StdThreshold, Threshold
from aisre.monitor.drift.wasserstein import Wasserstein

__all__ = [
    "ALL_METHODS",
    "KS",
    "METHODS",
    "PSI",
    "StdThreshold",
    "Threshold",
    "AndersonDarling",
    "ChiSquare",
    "ConstantThreshold",
    "CramerVonMises",
    "DatasetDrift",
    "DriftResult",
    "Hellinger",
    "HistogramMethod",
    "JensenShannon",
    "LInfinity",
    "Method",
    "MethodError",
    "Wasserstein",
    "ZTest",
    "adjust",
    "auto_method",
    "drift",
    "get_method",
]
