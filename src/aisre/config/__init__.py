"""Typed configuration loaded from `aisre.yaml`."""

from aisre.config.loader import config_from_dict, load_config, parse_config
from aisre.config.model import (
    AisreConfig,
    LogConfig,
    MetricsConfig,
    RedactionConfig,
    StoreConfig,
    TelemetryConfig,
    TracingConfig,
)

__all__ = [
    "AisreConfig",
    "LogConfig",
    "MetricsConfig",
    "RedactionConfig",
    "StoreConfig",
    "TelemetryConfig",
    "TracingConfig",
    "config_from_dict",
    "load_config",
    "parse_config",
]
