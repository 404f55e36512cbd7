"""Spans leave the process on their own thread: a bounded queue, short exports, bounded waits.

The SDK's `BatchSpanProcessor` exports in the *caller's* thread on `force_flush` and ignores
its timeout (opentelemetry-python#4568). With the collector down, each 512-span batch then
costs the OTLP exporter's whole retry schedule (~7 s), so flushing 2,000 records took ~28 s.
Here only the export thread ever talks to the exporter: `on_end` appends to a bounded deque
(dropping, and counting, when it is full), and every wait (`flush`, `shutdown`) has a bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("aisre.telemetry")


@dataclass(slots=True)
class SpanExportStats:
    """Counts since the queue started. `exported` + `failed` + `dropped` + queued = every span."""

    exported: int = 0
    failed: int = 0
    dropped: int = 0
    queue_depth: int = 0


class SpanExportQueue(SpanProcessor):
    """A span processor that never exports on the caller's thread.

    `queue_size` spans wait at most; past that new spans are dropped (counted, logged every
    10 s). Batches of `batch_size` go to the exporter every `schedule_delay_s`, or sooner
    when a batch is full. The exporter's own timeout bounds each export.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        queue_size: int = 2048,
        batch_size: int = 512,
        schedule_delay_s: float = 1.0,
    ) -> None:
        self._exporter = exporter
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._schedule_delay_s = schedule_delay_s
        self._queue: deque[ReadableSpan] = deque()
        self._lock = threading.Lock()
        self._done_changed = threading.Condition(self._lock)
        self._queued = 0  # sequence number of the last span accepted
        self._done = 0  # spans taken off the queue and handed to the exporter (either outcome)
        self._stats = SpanExportStats()
        self._last_drop_log = 0.0
        self._wake = threading.Event()
        self._stopping = False
        self._abandon = False
        self._failing = False  # the last export failed: the endpoint is down or silent
        self._exporter_closed = False
        self._thread = threading.Thread(target=self._run, name="aisre-span-export", daemon=True)
        self._thread.start()

    # -- caller side (SpanProcessor) -----------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or not span.context.trace_flags.sampled:
            return
        with self._lock:
            if len(self._queue) >= self._queue_size:
                self._stats.dropped += 1
                self._log_drop()
                return
            self._queue.append(span)
            self._queued += 1
            full = len(self._queue) >= self._batch_size
        if full:
            self._wake.set()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait up to `timeout_s` until every span ended before this call has been exported
        (or has failed to be); True if that happened in time."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            target = self._queued
        self._wake.set()
        with self._done_changed:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._done_changed.wait(remaining)
        return True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush(timeout_millis / 1000)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is queued for at most `timeout_s`, then stop; spans left are dropped."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._failing:
            self._close_exporter()  # aborts the exporter's retry back-off at once
        self._thread.join(timeout_s)
        self._abandon = True  # a thread still exporting stops after its current batch
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self._stats.dropped += left
        if left:
            log.warning("span export stopped with %d spans not exported (counted as dropped)", left)
        self._close_exporter()

    def _close_exporter(self) -> None:
        if not self._exporter_closed:
            self._exporter_closed = True
            self._exporter.shutdown()

    def stats(self) -> SpanExportStats:
        with self._lock:
            s = self._stats
            return SpanExportStats(s.exported, s.failed, s.dropped, len(self._queue))

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.warning(
                "span queue full (%d); dropping spans (is the OTLP endpoint reachable?); %d dropped so far",
                self._queue_size,
                self._stats.dropped,
            )

    # -- export thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._schedule_delay_s)
            self._wake.clear()
            self._drain(final=False)
        self._drain(final=True)

    def _drain(self, final: bool) -> None:
        if final and self._failing:
            # The endpoint was failing: trying the rest would only hold the process up at
            # shutdown; shutdown() counts what is left as dropped.
            return
        while not self._abandon and (final or not self._stopping):
            with self._lock:
                n = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
            if not batch:
                return
            try:
                ok = self._exporter.export(batch) == SpanExportResult.SUCCESS
            except Exception:  # noqa: BLE001 - a failing exporter must not kill the thread
                log.exception("exporting %d spans failed", len(batch))
                ok = False
            self._failing = not ok
            with self._done_changed:
                if ok:
                    self._stats.exported += n
                else:
                    self._stats.failed += n
                self._done += n
                self._done_changed.notify_all()
            if final and not ok:
                return
