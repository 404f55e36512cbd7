"""aisre: AI reliability engineering. Serve, record, observe, judge and act on model correctness.

What a user touches, by part of the loop:

- record: `Monitor` (the per-model SDK: record, timed, label), `instrument`, `Recorder`,
  `InferenceRecord`, `Label`, `Signal`, `Status`, `Route`, `open_store`, `load_config`, `ManualClock`
- observe: `drift`, `multivariate_drift`, `OnlineDrift` (+ `CountWindows`, `TimeWindows`),
  `performance`, `CBPE`, `fairness`, `window_importance`, `compare_importance`, `llm_quality`,
  `Reference`, and the whole catalogue in `aisre.monitor`
- errors: `AisreError` and its tree (see `aisre.errors`)

Every name loads on first use, so `import aisre` costs almost nothing: a service that only
records never imports scipy, and a notebook that only computes drift never imports the server.
`aisre.Monitor` (capital M) records a model's inferences; `aisre.monitor` is the statistics package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from aisre._version import __version__
from aisre.errors import (
    AisreError,
    ConfigError,
    DataError,
    GatewayError,
    InvalidParameterError,
    InvalidRecordError,
    MissingDependencyError,
    QueueFullError,
    StoreError,
    UnknownRecordError,
    UpstreamError,
)

if TYPE_CHECKING:  # static analysers and IDEs see the real names; at run time they load lazily
    from aisre import monitor
    from aisre.clock import ManualClock
    from aisre.config import AisreConfig, load_config
    from aisre.monitor.drift import drift
    from aisre.monitor.fairness import fairness, fairness_over_time
    from aisre.monitor.importance import compare_importance, window_importance
    from aisre.monitor.llm import llm_quality
    from aisre.monitor.multivariate import multivariate_drift
    from aisre.monitor.online import CountWindows, OnlineDrift, TimeWindows
    from aisre.monitor.performance import CBPE, performance, performance_over_time
    from aisre.monitor.profiles import Reference
    from aisre.records import InferenceRecord, Label, Route, Signal, Status
    from aisre.store import open_store
    from aisre.telemetry import Monitor, Recorder, instrument

# name -> module that defines it (loaded on first attribute access)
_LAZY = {
    # record
    "Monitor": "aisre.telemetry",
    "Recorder": "aisre.telemetry",
    "instrument": "aisre.telemetry",
    "InferenceRecord": "aisre.records",
    "Label": "aisre.records",
    "Route": "aisre.records",
    "Signal": "aisre.records",
    "Status": "aisre.records",
    "open_store": "aisre.store",
    "AisreConfig": "aisre.config",
    "load_config": "aisre.config",
    "ManualClock": "aisre.clock",
    # observe
    "drift": "aisre.monitor.drift",
    "multivariate_drift": "aisre.monitor.multivariate",
    "OnlineDrift": "aisre.monitor.online",
    "CountWindows": "aisre.monitor.online",
    "TimeWindows": "aisre.monitor.online",
    "performance": "aisre.monitor.performance",
    "performance_over_time": "aisre.monitor.performance",
    "CBPE": "aisre.monitor.performance",
    "fairness": "aisre.monitor.fairness",
    "fairness_over_time": "aisre.monitor.fairness",
    "window_importance": "aisre.monitor.importance",
    "compare_importance": "aisre.monitor.importance",
    "llm_quality": "aisre.monitor.llm",
    "Reference": "aisre.monitor.profiles",
}

__all__ = [
    "AisreConfig",
    "AisreError",
    "CBPE",
    "ConfigError",
    "CountWindows",
    "DataError",
    "GatewayError",
    "InferenceRecord",
    "InvalidParameterError",
    "InvalidRecordError",
    "Label",
    "ManualClock",
    "MissingDependencyError",
    "Monitor",
    "OnlineDrift",
    "QueueFullError",
    "Recorder",
    "Reference",
    "Route",
    "Signal",
    "Status",
    "StoreError",
    "TimeWindows",
    "UnknownRecordError",
    "UpstreamError",
    "__version__",
    "compare_importance",
    "drift",
    "fairness",
    "fairness_over_time",
    "instrument",
    "llm_quality",
    "load_config",
    "monitor",
    "multivariate_drift",
    "open_store",
    "performance",
    "performance_over_time",
    "window_importance",
]


def __getattr__(name: str) -> object:
    if name == "monitor":
        value: object = importlib.import_module("aisre.monitor")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'aisre' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
