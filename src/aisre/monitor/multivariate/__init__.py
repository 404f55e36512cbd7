"""Multivariate drift of a whole table: domain classifier AUC, PCA reconstruction error, MMD, and
text drift through sentence embeddings (the `[text]` extra)."""

from aisre.monitor.multivariate.api import (
    MultivariateDriftResult,
    domain_classifier_drift,
    mmd_drift,
    multivariate_drift,
    reconstruction_drift,
)
from aisre.monitor.multivariate.text import Embedder, embedding_drift

__all__ = [
    "Embedder",
    "MultivariateDriftResult",
    "domain_classifier_drift",
    "embedding_drift",
    "mmd_drift",
    "multivariate_drift",
    "reconstruction_drift",
]
