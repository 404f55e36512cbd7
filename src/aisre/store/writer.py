"""The batching writer: callers hand over records in microseconds; a thread commits them.

Records go into a bounded FIFO queue. One background thread drains it in batches and
hands each batch to every sink (the SQLite store, a JSON-lines log, ...). Acknowledgement
works by *markers*: a marker placed in the queue after a record is released only when the
batch holding everything before it has been committed by every sink. `durable` mode waits
for such a marker on every submit (group commit: concurrent callers share one commit);
`flush()` waits for one marker.

Overflow is never silent: `block` waits for room (then raises), `drop` discards and counts,
`raise` refuses at once; every refused or dropped record is counted in `WriterStats`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from aisre.errors import QueueFullError, StoreError, WriterClosedError
from aisre.records import InferenceRecord
from aisre.store.base import Sink

log = logging.getLogger("aisre.store")

Durability = Literal["durable", "fast"]
Overflow = Literal["block", "drop", "raise"]


class _Marker:
    """A point in the queue; set once everything queued before it is committed."""

    __slots__ = ("event", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: str | None = None


@dataclass(slots=True)
class WriterStats:
    """Counts since the writer started. `dropped` + `rejected` is every record not kept."""

    written: int = 0
    dropped: int = 0
    rejected: int = 0
    batches: int = 0
    write_errors: int = 0
    write_seconds: float = 0.0
    queue_depth: int = 0
    queue_capacity: int = 0


class BatchingWriter:
    def __init__(
        self,
        sinks: Sequence[Sink],
        durability: Durability = "fast",
        queue_size: int = 100_000,
        overflow: Overflow = "block",
        batch_size: int = 4096,
        flush_interval_s: float = 0.1,
        block_timeout_s: float = 5.0,
        ack_timeout_s: float = 30.0,
        maintenance_interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if durability not in ("durable", "fast"):
            raise ValueError(f"durability: expected 'durable' or 'fast', got {durability!r}")
        if overflow not in ("block", "drop", "raise"):
            raise ValueError(f"overflow: expected 'block', 'drop' or 'raise', got {overflow!r}")
        self.sinks = list(sinks)
        self.durability = durability
        self.capacity = queue_size
        self.overflow = overflow
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.block_timeout_s = block_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.maintenance_interval_s = maintenance_interval_s
        self._clock = clock
        self._queue: deque[InferenceRecord | _Marker] = deque()
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._count_lock = threading.Lock()
        self._stats = WriterStats(queue_capacity=queue_size)
        self._closed = False
        self._last_drop_log = 0.0
        self._thread = threading.Thread(target=self._run, name="aisre-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- caller side ------------------------------------------------------------------
    def submit(self, record: InferenceRecord) -> bool:
        """Queue one record; True if accepted. In durable mode, returns once committed."""
        if self._closed:
            raise WriterClosedError("the record writer is closed; no more records are accepted")
        if len(self._queue) >= self.capacity and not self._make_room(1):
            return False
        self._queue.append(record)
        if self.durability == "durable":
            self._wait(self._mark())
        elif len(self._queue) >= self.batch_size:
            self._wake.set()
        return True

    def submit_many(self, records: Iterable[InferenceRecord]) -> int:
        """Queue several records; returns how many were accepted."""
        if self._closed:
            raise WriterClosedError("the record writer is closed; no more records are accepted")
        batch = records if isinstance(records, list) else list(records)
        accepted = 0
        for start in range(0, len(batch), self.batch_size):
            part = batch[start : start + self.batch_size]
            room = self.capacity - len(self._queue)
            if room < len(part) and not self._make_room(len(part)):
                room = max(0, self.capacity - len(self._queue))
                part = part[:room]  # only reached with overflow=drop
            self._queue.extend(part)
            accepted += len(part)
            self._wake.set()
        if self.durability == "durable" and accepted:
            self._wait(self._mark())
        return accepted

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record queued before this call is committed by every sink."""
        if self._closed and not self._thread.is_alive():
            return
        self._wait(self._mark(), timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, stop the thread, close the sinks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._wake.set()
        self._thread.join(timeout)
        left = sum(1 for item in self._queue if isinstance(item, InferenceRecord))
        if left:
            with self._count_lock:
                self._stats.dropped += left
            log.error("writer closed with %d records not committed (counted as dropped)", left)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - closing must reach every sink
                log.exception("closing sink %r failed", sink)

    def stats(self) -> WriterStats:
        with self._count_lock:
            s = self._stats
            return WriterStats(
                written=s.written,
                dropped=s.dropped,
                rejected=s.rejected,
                batches=s.batches,
                write_errors=s.write_errors,
                write_seconds=s.write_seconds,
                queue_depth=len(self._queue),
                queue_capacity=self.capacity,
            )

    def _mark(self) -> _Marker:
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker

    def _wait(self, marker: _Marker, timeout: float | None = None) -> None:
        limit = self.ack_timeout_s if timeout is None else timeout
        if not marker.event.wait(limit):
            raise StoreError(
                f"records were not committed within {limit:g} s (the store may be failing; "
                "they stay queued and will be written when it recovers)"
            )
        if marker.error:
            raise StoreError(marker.error)

    def _make_room(self, n: int) -> bool:
        """Apply the overflow policy when the queue is full; True if there is room now."""
        if self.overflow == "block":
            self._wake.set()
            deadline = time.monotonic() + self.block_timeout_s
            with self._room:
                while len(self._queue) + n > self.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        break
                    self._room.wait(min(remaining, 0.05))
                else:
                    return True
            self._count("rejected", n)
            raise QueueFullError(
                f"record queue full ({self.capacity} records) for {self.block_timeout_s:g} s; "
                "the store is not keeping up (raise store.queue_size or check the disk)"
            )
        if self.overflow == "raise":
            self._count("rejected", n)
            raise QueueFullError(f"record queue full ({self.capacity} records); overflow policy is 'raise'")
        room = self.capacity - len(self._queue)
        self._count("dropped", n - max(room, 0))
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.warning(
                "record queue full (%d); dropping records (overflow policy 'drop'); %d dropped so far",
                self.capacity,
                self._stats.dropped,
            )
        return room >= n

    def _count(self, name: str, n: int) -> None:
        with self._count_lock:
            setattr(self._stats, name, getattr(self._stats, name) + n)

    # -- writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        next_maintenance = time.monotonic() + min(60.0, self.maintenance_interval_s)
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self._drain()
            if time.monotonic() >= next_maintenance:
                next_maintenance = time.monotonic() + self.maintenance_interval_s
                self._maintain()
            if self._closed:
                self._drain()
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[InferenceRecord] = []
            markers: list[_Marker] = []
            while queue and len(batch) < self.batch_size:
                item = queue.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    batch.append(item)
            with self._room:
                self._room.notify_all()
            committed = self._commit(batch) if batch else True
            for marker in markers:
                if not committed:
                    marker.error = f"{len(batch)} records could not be written at close"
                marker.event.set()

    def _commit(self, batch: list[InferenceRecord]) -> bool:
        durable = self.durability == "durable"
        for sink in self.sinks:
            delay = 0.05
            while True:
                started = time.perf_counter()
                try:
                    sink.write_batch(batch, durable)
                except Exception as exc:  # noqa: BLE001 - a failing sink must not kill the thread
                    self._count("write_errors", 1)
                    log.error("writing %d records to %r failed: %s; retrying in %.2fs", len(batch), sink, exc, delay)
                    if self._closed and delay >= 1.0:
                        self._count("dropped", len(batch))
                        log.error("giving up on %d records at close", len(batch))
                        return False
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                with self._count_lock:
                    self._stats.write_seconds += time.perf_counter() - started
                break
        with self._count_lock:
            self._stats.written += len(batch)
            self._stats.batches += 1
        return True

    def _maintain(self) -> None:
        for sink in self.sinks:
            maintain = getattr(sink, "maintain", None)
            if maintain is not None:
                try:
                    maintain(self._clock())
                except Exception:  # noqa: BLE001
                    log.exception("maintenance of %r failed", sink)
