"""Profiles: mergeable summaries of a column over a window, and a saved `Reference`."""

from aisre.monitor.profiles.profile import (
    CategoricalProfile,
    NumericProfile,
    category_counts,
    fit_profile,
    reference_edges,
)
from aisre.monitor.profiles.reference import Reference, TableProfile

__all__ = [
    "CategoricalProfile",
    "NumericProfile",
    "Reference",
    "TableProfile",
    "category_counts",
    "fit_profile",
    "reference_edges",
]
