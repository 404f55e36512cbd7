"""Telemetry: Prometheus metrics, OpenTelemetry spans, the Recorder and the in-process SDK."""

from aisre.telemetry.instrument import InstrumentedEstimator, instrument
from aisre.telemetry.metrics import Metrics, MetricsServer
from aisre.telemetry.monitor import Monitor
from aisre.telemetry.recorder import Recorder
from aisre.telemetry.redaction import Redactor
from aisre.telemetry.tracing import SpanEmitter, build_tracer_provider, span_attributes

__all__ = [
    "InstrumentedEstimator",
    "Metrics",
    "MetricsServer",
    "Monitor",
    "Recorder",
    "Redactor",
    "SpanEmitter",
    "build_tracer_provider",
    "instrument",
    "span_attributes",
]
