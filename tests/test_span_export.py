"""Span export never holds up recording or the store, whatever the collector does."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import aisre
from aisre.config import parse_config
from aisre.telemetry import Recorder
from aisre.telemetry.span_export import SpanExportQueue

RECORDS = 2_000


def _recorder(tmp_path: Path, endpoint: str) -> Recorder:
    cfg = parse_config(f"""
store: sqlite:///{tmp_path / "spans.db"}
telemetry: {{tracing: {{enabled: true, otlp_endpoint: '{endpoint}'}}}}
""")
    return Recorder.from_config(cfg)


@pytest.fixture(params=["refused", "silent"])
def dead_endpoint(request) -> Iterator[str]:
    """An OTLP endpoint that refuses connections, or accepts them and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if request.param == "silent":
        sock.listen(64)  # the kernel completes the handshake; nobody ever reads or replies
    else:
        sock.close()
    yield f"http://127.0.0.1:{port}/v1/traces"
    sock.close()


def test_flush_commits_every_record_at_once_when_the_collector_is_down(tmp_path: Path, dead_endpoint: str):
    recorder = _recorder(tmp_path, dead_endpoint)
    monitor = aisre.Monitor("fraud", recorder=recorder)
    for i in range(RECORDS):
        monitor.record({"amount": float(i)}, i % 2, latency_s=0.001)
    started = time.monotonic()
    monitor.flush(timeout=30)
    flushed_in = time.monotonic() - started
    assert monitor.store.count() == RECORDS
    # Exporting these spans to a dead collector used to hold flush() for ~28 s.
    assert flushed_in < 10  # wide for a busy CI machine; the bug took ~28 s
    started = time.monotonic()
    recorder.close()
    assert time.monotonic() - started < 15  # shutdown is bounded too


class _Receiver(BaseHTTPRequestHandler):
    spans = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with _Receiver.lock:
            _Receiver.spans += n
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_every_span_reaches_a_live_collector_without_flush_waiting_for_it(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.spans = 0
    recorder = _recorder(tmp_path, f"http://127.0.0.1:{server.server_port}/v1/traces")
    monitor = aisre.Monitor("fraud", recorder=recorder)
    try:
        for i in range(RECORDS):
            monitor.record({"amount": float(i)}, 0, latency_s=0.001)  # within the 2,048-span queue
        monitor.flush()
        assert monitor.store.count() == RECORDS
        assert monitor.flush_spans(timeout_s=30) is True
        assert _Receiver.spans == RECORDS
    finally:
        recorder.close()
        server.shutdown()


class _StuckExporter(SpanExporter):
    """An exporter whose first export hangs until released (a collector that stalls)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        self.exported.extend(s.name for s in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def _provider(exporter: SpanExporter, **options) -> tuple[TracerProvider, SpanExportQueue]:
    queue = SpanExportQueue(exporter, schedule_delay_s=0.01, **options)
    provider = TracerProvider()
    provider.add_span_processor(queue)
    return provider, queue


def test_a_stalled_exporter_makes_spans_drop_and_count_never_block():
    exporter = _StuckExporter()
    provider, queue = _provider(exporter, queue_size=10, batch_size=5)
    tracer = provider.get_tracer("test")
    tracer.start_span("first").end()
    assert exporter.entered.wait(10)  # the export thread is now stuck inside export()
    for i in range(100):
        tracer.start_span(f"s{i}").end()  # returns although nothing can be exported
    assert queue.stats().dropped == 90 and queue.stats().queue_depth == 10
    assert queue.flush(timeout_s=0.05) is False
    exporter.release.set()
    assert queue.flush(timeout_s=10) is True
    assert exporter.exported == ["first"] + [f"s{i}" for i in range(10)]
    assert queue.stats().exported == 11
    provider.shutdown()


def test_shutdown_gives_up_on_a_stalled_exporter_after_its_bound():
    exporter = _StuckExporter()
    provider, queue = _provider(exporter, batch_size=1)
    tracer = provider.get_tracer("test")
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    assert exporter.entered.wait(10)
    exporter.shutdown = lambda: None  # the stalled exporter ignores shutdown as well
    started = time.monotonic()
    queue.shutdown(timeout_s=0.2)
    assert time.monotonic() - started < 5
    assert queue.stats().dropped == 2  # the two spans still queued; the third is mid-export
    exporter.release.set()
