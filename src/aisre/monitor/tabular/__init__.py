"""Tabular inputs: any table -> named numpy columns, class labels -> codes, stored records joined to late
labels, and time windows. Every monitor method reads its data through here."""

from aisre.monitor.tabular.classes import canonical, encode, factorize, sort_classes
from aisre.monitor.tabular.frame import TextColumn, check_alpha, is_numeric, normalise, to_columns
from aisre.monitor.tabular.labeled import LabeledWindow, as_labeled_window, from_records, from_table, labeled_window
from aisre.monitor.tabular.windows import (
    OverTime,
    WindowReport,
    WindowResult,
    over_time,
    parse_window,
    window_index,
    window_rows,
)

__all__ = [
    "LabeledWindow",
    "OverTime",
    "TextColumn",
    "WindowReport",
    "WindowResult",
    "as_labeled_window",
    "canonical",
    "check_alpha",
    "encode",
    "factorize",
    "from_records",
    "from_table",
    "is_numeric",
    "labeled_window",
    "normalise",
    "over_time",
    "parse_window",
    "sort_classes",
    "to_columns",
    "window_index",
    "window_rows",
]
