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
from aisre.records import InferenceRecord, Label, Route, Status
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
    "Route",
    "SQLiteStore",
    "Status",
    "StoreError",
    "SystemClock",
    "UnknownRecordError",
    "__version__",
    "instrument",
    "load_config",
    "open_store",
]
