"""Monitoring jobs: a window of stored records -> columns -> checks -> signals, published to the
store and onto Prometheus gauges."""

from aisre.monitor.jobs.checks import WindowCheck, check_window, input_columns, output_columns
from aisre.monitor.jobs.signals import publish

__all__ = ["WindowCheck", "check_window", "input_columns", "output_columns", "publish"]
