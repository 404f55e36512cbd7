"""Model performance: realised from late labels (metrics with confidence intervals, per window),
and estimated without labels (NannyML's CBPE), with the intervals and calibration they use."""

from aisre.monitor.performance.calibration import expected_calibration_error
from aisre.monitor.performance.cbpe import CBPE, CBPEReport, Estimate
from aisre.monitor.performance.intervals import MetricValue
from aisre.monitor.performance.realised import PerformanceReport, performance, performance_over_time

__all__ = [
    "CBPE",
    "CBPEReport",
    "Estimate",
    "MetricValue",
    "PerformanceReport",
    "expected_calibration_error",
    "performance",
    "performance_over_time",
]
