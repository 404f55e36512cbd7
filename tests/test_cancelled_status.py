"""Status `cancelled` (the caller left before the answer): stored as such, counted, but never
counted as an error by `aisre log stats`, the Prometheus error counter or a span's status."""

from __future__ import annotations

import subprocess
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import aisre
from aisre.records import InferenceRecord, Status
from aisre.store.sqlite import SQLiteStore
from aisre.store.summary import summarize, summarize_by_key
from aisre.telemetry.metrics import Metrics
from aisre.telemetry.tracing import SpanEmitter

from .conftest import PYTHON


def _log(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with aisre.Monitor("chat", "v1", store=url) as m:
        m.record("hi", "hello", latency_s=0.1, key_id="k1")
        m.record("hi", "hello", latency_s=0.1, key_id="k1")
        m.record("hi", None, status="error", error="upstream answered 500", latency_s=0.2, key_id="k1")
        m.record("hi", None, status="cancelled", error="client closed the stream", latency_s=3.0, key_id="k1")
    return url


def test_cancelled_records_round_trip_and_are_not_errors_in_the_summaries(tmp_path: Path):
    _log(tmp_path)
    store = SQLiteStore(tmp_path / "log.db")
    statuses = [r.status for r in store.records()]
    assert statuses == [Status.OK, Status.OK, Status.ERROR, Status.CANCELLED]
    (row,) = summarize(store)
    assert (row.count, row.errors, row.cancelled, row.error_rate) == (4, 1, 1, 0.25)
    (key,) = summarize_by_key(store)
    assert (key.count, key.errors) == (4, 1)


def test_log_stats_shows_cancelled_calls_apart_from_errors(tmp_path: Path):
    url = _log(tmp_path)
    out = subprocess.run(
        [PYTHON, "-m", "aisre", "log", "stats", "--store", url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "cancelled" in out.stdout
    row = next(line for line in out.stdout.splitlines() if " v1 " in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[2:6] == ["4", "1", "25.00%", "1"]  # count, errors, error rate, cancelled


def test_prometheus_counts_a_cancelled_call_but_not_as_an_error():
    metrics = Metrics()
    metrics.observe(InferenceRecord(model="chat", version="v1", status=Status.CANCELLED, latency_s=1.0))
    metrics.observe(InferenceRecord(model="chat", version="v1", status=Status.ERROR, latency_s=1.0))
    metrics.observe_call([InferenceRecord(model="fraud", version="v1", status=Status.CANCELLED) for _ in range(3)], 0.5)

    def value(name: str, model: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"model": model, "version": "v1", "route": "primary"})

    assert value("aisre_predictions_total", "chat") == 2 and value("aisre_inference_errors_total", "chat") == 1
    assert value("aisre_predictions_total", "fraud") == 3 and not value("aisre_inference_errors_total", "fraud")


def test_a_cancelled_call_makes_a_span_without_error_status():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emitter = SpanEmitter(provider)
    emitter.emit(InferenceRecord(model="chat", version="v1", status=Status.CANCELLED, error="client left", ts=1.0))
    emitter.emit(InferenceRecord(model="chat", version="v1", status=Status.ERROR, error="ValueError: bad", ts=1.0))
    cancelled, failed = exporter.get_finished_spans()
    assert cancelled.status.status_code is StatusCode.UNSET and "error.type" not in cancelled.attributes
    assert cancelled.attributes["aisre.status"] == "cancelled"
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "ValueError"
