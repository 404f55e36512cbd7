"""Monitoring jobs: a window of stored records -> columns -> checks -> signals, published to the
store and onto Prometheus gauges; `MonitorRunner` runs the `monitors:` of aisre.yaml on a schedule."""

from aisre.monitor.jobs.background import BackgroundMonitors, RunnerLock, start_background
from aisre.monitor.jobs.checks import WindowCheck, check_window, input_columns, output_columns
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.monitor.jobs.signals import publish

__all__ = [
    "BackgroundMonitors",
    "MonitorRunner",
    "RunnerLock",
    "WindowCheck",
    "check_window",
    "input_columns",
    "output_columns",
    "publish",
    "start_background",
]
