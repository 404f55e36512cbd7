"""Prometheus metrics for inferences and for the record pipeline.

Names follow the Prometheus guide: base units, `_total` counters, labels of low
cardinality only (model, version, route; never ids). Each `Metrics` owns its registry, so
two in one process never collide; pass `registry=prometheus_client.REGISTRY` to join the
process-wide one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from aisre.records import InferenceRecord, Status
from aisre.store.writer import WriterStats
from aisre.telemetry.signals import SignalExporter

# 0.2 and 0.3 are there for the latency SLOs people write ("99.9% within 200ms"): a threshold
# must be a bucket bound for the Prometheus rules to count events under it exactly.
LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.25,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
TTFT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
TPOT_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
LABELS = ("model", "version", "route")


class _Bound:
    """The metric children of one (model, version, route), resolved once for the hot path."""

    __slots__ = ("duration", "predictions", "errors", "input_tokens", "output_tokens", "cost", "ttft", "tpot")

    def __init__(self, m: Metrics, key: tuple[str, str, str]) -> None:
        self.duration = m.duration.labels(*key)
        self.predictions = m.predictions.labels(*key)
        self.errors = m.errors.labels(*key)
        self.input_tokens = m.tokens.labels(*key, "input")
        self.output_tokens = m.tokens.labels(*key, "output")
        self.cost = m.cost.labels(*key)
        self.ttft = m.ttft.labels(*key)
        self.tpot = m.tpot.labels(*key)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.duration = Histogram(
            "aisre_inference_duration_seconds",
            "Time to serve one inference call, in seconds.",
            LABELS,
            registry=r,
            buckets=LATENCY_BUCKETS_S,
        )
        self.predictions = Counter(
            "aisre_predictions",
            "Inferences recorded (successful and failed).",
            LABELS,
            registry=r,
        )
        self.errors = Counter(
            "aisre_inference_errors",
            "Inferences that ended in an error (not those cancelled by their caller).",
            LABELS,
            registry=r,
        )
        self.tokens = Counter(
            "aisre_tokens",
            "LLM tokens, by direction (input or output).",
            (*LABELS, "direction"),
            registry=r,
        )
        self.cost = Counter("aisre_cost_usd", "Cost of inferences, in US dollars.", LABELS, registry=r)
        self.ttft = Histogram(
            "aisre_time_to_first_token_seconds",
            "LLM time to first token, in seconds.",
            LABELS,
            registry=r,
            buckets=TTFT_BUCKETS_S,
        )
        self.tpot = Histogram(
            "aisre_time_per_output_token_seconds",
            "LLM time per output token after the first, in seconds.",
            LABELS,
            registry=r,
            buckets=TPOT_BUCKETS_S,
        )
        self.signals = SignalExporter()  # monitoring signals, latest value per series
        self.registry.register(self.signals)
        self._bound: dict[tuple[str, str, str], _Bound] = {}
        self._bind_lock = threading.Lock()

    def bound(self, model: str, version: str, route: str) -> _Bound:
        key = (model, version, route)
        child = self._bound.get(key)
        if child is None:
            with self._bind_lock:
                child = self._bound.setdefault(key, _Bound(self, key))
        return child

    def observe(self, r: InferenceRecord) -> None:
        """Count one record."""
        b = self.bound(r.model, r.version, r.route)
        b.predictions.inc()
        if r.latency_s is not None:
            b.duration.observe(r.latency_s)
        if r.status == Status.ERROR:  # a cancelled call is no failure of the model
            b.errors.inc()
        if r.input_tokens:
            b.input_tokens.inc(r.input_tokens)
        if r.output_tokens:
            b.output_tokens.inc(r.output_tokens)
        if r.cost_usd:
            b.cost.inc(r.cost_usd)
        if r.ttft_s is not None:
            b.ttft.observe(r.ttft_s)
        if r.tpot_s is not None:
            b.tpot.observe(r.tpot_s)

    def observe_call(self, records: Iterable[InferenceRecord], latency_s: float | None) -> None:
        """Count the records of one batched call: one latency observation per call."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        for r in records:
            counts = groups.setdefault((r.model, r.version, r.route), [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += r.status == Status.ERROR
            counts[2] += r.input_tokens or 0
            counts[3] += r.output_tokens or 0
        for key, (n, errors, tokens_in, tokens_out) in groups.items():
            b = self.bound(*key)
            b.predictions.inc(n)
            if errors:
                b.errors.inc(errors)
            if tokens_in:
                b.input_tokens.inc(tokens_in)
            if tokens_out:
                b.output_tokens.inc(tokens_out)
            if latency_s is not None:
                b.duration.observe(latency_s)

    def watch_writer(self, stats: Callable[[], WriterStats]) -> None:
        """Export the batching writer's counters, read at scrape time (zero hot-path cost)."""
        self.registry.register(_WriterCollector(stats))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry."""
        return generate_latest(self.registry)

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> MetricsServer:
        """Serve /metrics over HTTP from a background thread; port 0 picks a free port."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """A running /metrics endpoint; `url` is where to scrape it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET/AF_INET6 socket names its host as a str, never bytes
        # an IPv6 literal goes in brackets (RFC 3986), or its colons read as a port
        self.url = f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"
        self.port = port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _WriterCollector:
    def __init__(self, stats: Callable[[], WriterStats]) -> None:
        self._stats = stats

    def describe(self) -> list:
        return []

    def collect(self) -> Iterable:
        s = self._stats()
        for name, value, doc in (
            ("aisre_records_written", s.written, "Records committed to the store."),
            (
                "aisre_records_dropped",
                s.dropped,
                "Records discarded: queue full under the 'drop' policy, or left uncommitted at close.",
            ),
            (
                "aisre_records_rejected",
                s.rejected,
                "Records refused to the caller with QueueFullError (policy 'raise', or 'block' timed out).",
            ),
            ("aisre_store_write_errors", s.write_errors, "Failed batch writes (retried)."),
            ("aisre_store_batches", s.batches, "Batches committed."),
            ("aisre_store_write_seconds", s.write_seconds, "Time spent committing batches."),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("aisre_record_queue_depth", "Records waiting to be written.", value=s.queue_depth)
        yield GaugeMetricFamily("aisre_record_queue_capacity", "Size of the record queue.", value=s.queue_capacity)
