"""The Recorder: where a finished inference goes (redaction, span, metrics, the writer).

One Recorder per process is typical; it is shared by every `Monitor` and by the gateway.
Nothing on its `record` path touches the disk: the batching writer does that.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig, checks
from aisre.errors import UnknownRecordError
from aisre.records import InferenceRecord, Label
from aisre.store import BatchingWriter, JsonlSink, SQLiteStore, Store, open_store
from aisre.telemetry.metrics import Metrics, MetricsServer
from aisre.telemetry.redaction import Redactor
from aisre.telemetry.tracing import SpanEmitter, build_tracer_provider

log = logging.getLogger("aisre")


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        writer: BatchingWriter | None = None,
        metrics: Metrics | None = None,
        spans: SpanEmitter | None = None,
        redactor: Redactor | None = None,
        clock: Clock = SYSTEM_CLOCK,
        jsonl: str | None = None,
        durability: str = "fast",
    ) -> None:
        self.store = store
        self.clock = clock
        if writer is None:
            sinks: list[Any] = [store]
            if jsonl:
                sinks.append(JsonlSink(jsonl))
            writer = BatchingWriter(sinks, durability=durability, clock=clock.now)  # type: ignore[arg-type]
        self.writer = writer
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_writer(writer.stats)
        self.spans = spans
        self.redactor = redactor
        self._metrics_server: MetricsServer | None = None

    @classmethod
    def from_config(cls, cfg: AisreConfig, clock: Clock = SYSTEM_CLOCK, tracer_provider: Any = None) -> Recorder:
        """Everything `aisre.yaml` describes: store, writer, sinks, metrics, tracing, redaction.

        Spans go to `tracer_provider` when given; else, with tracing enabled, to an OTLP
        exporter if `otlp_endpoint` is set, or to the process's global tracer provider.
        """
        checks.check(cfg, parts=[checks.RECORDER])  # every store/log/redaction problem at once, before opening
        redactor = Redactor.from_config(cfg.redaction)
        s = cfg.store
        if not s.is_sqlite:  # refuse every configured feature PostgreSQL cannot hold yet, before connecting
            from aisre.store.postgres import check_config

            check_config(cfg)
        store = open_store(s.url, retention_days=s.retention_days, pool_size=s.pool_size)
        sinks: list[Any] = [store]
        if cfg.log.jsonl:
            sinks.append(JsonlSink(cfg.log.jsonl))
        writer = BatchingWriter(
            sinks,
            durability=s.durability,
            queue_size=s.queue_size,
            overflow=s.overflow,
            batch_size=s.batch_size,
            flush_interval_s=s.flush_interval_s,
            block_timeout_s=s.block_timeout_s,
            clock=clock.now,
        )
        metrics = Metrics() if cfg.telemetry.metrics.enabled else None
        spans = None
        t = cfg.telemetry.tracing
        if tracer_provider is not None:
            spans = SpanEmitter(tracer_provider, log_content=t.log_content)
        elif t.enabled:
            provider = build_tracer_provider(t) if t.otlp_endpoint else None
            spans = SpanEmitter(provider, t.log_content, owns_provider=provider is not None)
        recorder = cls(store, writer=writer, metrics=metrics, spans=spans, redactor=redactor, clock=clock)
        m = cfg.telemetry.metrics
        if metrics is not None and m.port is not None:
            recorder.serve_metrics(m.host, m.port)
        return recorder

    # -- recording --------------------------------------------------------------------
    def record(self, r: InferenceRecord) -> bool:
        """Send one finished record everywhere; True if the writer accepted it."""
        if self.redactor is not None:
            r.inputs = self.redactor.apply(r.inputs)
        if self.spans is not None:
            self.spans.emit(r)
        if self.metrics is not None:
            self.metrics.observe(r)
        return self.writer.submit(r)

    def record_call(self, records: Sequence[InferenceRecord], latency_s: float | None) -> int:
        """Send the records of one batched call (one span, one latency observation)."""
        if not records:
            return 0
        if self.redactor is not None:
            for r in records:
                r.inputs = self.redactor.apply(r.inputs)
        if self.spans is not None:
            first = records[0]
            self.spans.emit(first, batch_size=len(records))
            for r in records[1:]:
                if r.trace_id is None:
                    r.trace_id = first.trace_id
        if self.metrics is not None:
            self.metrics.observe_call(records, latency_s)
        return self.writer.submit_many(records)

    # -- labels -------------------------------------------------------------------------
    def label(self, record_id: str, value: Any, ts: float | None = None) -> None:
        """Attach ground truth to a recorded inference; UnknownRecordError if none has that id."""
        self.label_many([(record_id, value)], ts)

    def label_many(self, pairs: Sequence[tuple[str, Any]], ts: float | None = None) -> None:
        when = self.clock.now() if ts is None else ts
        labels = [Label(str(rid), value, when) for rid, value in pairs]
        try:
            self.store.add_labels(labels)
        except UnknownRecordError:
            # The records may still be queued: commit them, then try once more.
            self.writer.flush()
            self.store.add_labels(labels)

    # -- lifecycle ----------------------------------------------------------------------
    def serve_metrics(self, host: str = "127.0.0.1", port: int = 9464) -> MetricsServer:
        if self.metrics is None:
            self.metrics = Metrics()
            self.metrics.watch_writer(self.writer.stats)
        if self._metrics_server is None:
            self._metrics_server = self.metrics.serve(host, port)
            log.info("metrics at %s", self._metrics_server.url)
        return self._metrics_server

    @property
    def metrics_url(self) -> str | None:
        return None if self._metrics_server is None else self._metrics_server.url

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record so far is committed to the store.

        Spans are not waited for: exporting them is a separate path (its own queue and
        thread) so a slow or absent collector can never hold up the store. See `flush_spans`.
        """
        self.writer.flush(timeout)

    def flush_spans(self, timeout_s: float = 5.0) -> bool:
        """Wait up to `timeout_s` for the spans emitted so far to be exported; True if they were."""
        return True if self.spans is None else self.spans.flush(timeout_s)

    def close(self) -> None:
        """Commit queued records, then stop span export (bounded), metrics and the store."""
        self.writer.close()
        if self.spans is not None:
            self.spans.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None
        if isinstance(self.store, SQLiteStore):
            self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
