"""A self-contained HTML drift report: one file, inline CSS and SVG, no scripts."""

from aisre.monitor.report.html import drift_report_html

__all__ = ["drift_report_html"]
