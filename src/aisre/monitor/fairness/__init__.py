"""Group fairness of a binary classifier: per-group rates, parity gaps, the four-fifths rule,
per window (numbers equal to Fairlearn's)."""

from aisre.monitor.fairness.groups import FairnessReport, GroupMetrics, fairness, fairness_over_time

__all__ = ["FairnessReport", "GroupMetrics", "fairness", "fairness_over_time"]
