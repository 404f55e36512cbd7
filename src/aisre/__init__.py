"""aisre: AI reliability engineering. Serve, record, observe, judge and act on model correctness."""

from aisre._version import __version__
from aisre.clock import Clock, ManualClock, SystemClock
from aisre.config import AisreConfig, load_config
from aisre.errors import (
    AisreError,
    ConfigError,
    InvalidRecordError,
    QueueFullError,
    StoreError,
    UnknownRecordError,
)
from aisre.records import InferenceRecord, Label, Route, Signal, Status
from aisre.store import BatchingWriter, JsonlSink, RecordFilter, SQLiteStore, open_store
from aisre.telemetry import Metrics, Monitor, Recorder, instrument

__all__ = [
    "AisreConfig",
    "AisreError",
    "BatchingWriter",
    "Clock",
    "ConfigError",
    "InferenceRecord",
    "InvalidRecordError",
    "JsonlSink",
    "Label",
    "ManualClock",
    "Metrics",
    "Monitor",
    "QueueFullError",
    "RecordFilter",
    "Recorder",
    "Reference",
    "Route",
    "Signal",
    "SQLiteStore",
    "Status",
    "StoreError",
    "SystemClock",
    "UnknownRecordError",
    "__version__",
    "drift",
    "fairness",
    "instrument",
    "load_config",
    "open_store",
    "performance",
]

# The statistics layer (scipy, scikit-learn-sized imports) loads on first use, so
# `import aisre` stays fast for services that only record.
_LAZY = {
    "drift": "aisre.monitor.drift",
    "fairness": "aisre.monitor.fairness",
    "performance": "aisre.monitor.performance",
    "Reference": "aisre.monitor.reference",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aisre' has no attribute {name!r}")
