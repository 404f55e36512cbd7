"""Online drift: detectors with stated false-alarm rates over count or time windows of a stream."""

from aisre.monitor.online.detectors import (
    BootstrapCalibrated,
    CountWindows,
    Cusum,
    Detector,
    OnlineDrift,
    ProfileDistance,
    RawValues,
    TestOutcome,
    TimeWindows,
    WindowTest,
    WindowVerdict,
    cusum_limit,
)

__all__ = [
    "BootstrapCalibrated",
    "CountWindows",
    "Cusum",
    "Detector",
    "OnlineDrift",
    "ProfileDistance",
    "RawValues",
    "TestOutcome",
    "TimeWindows",
    "WindowTest",
    "WindowVerdict",
    "cusum_limit",
]
