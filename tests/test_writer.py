from __future__ import annotations

import threading
import time

import pytest

from aisre import InferenceRecord, QueueFullError
from aisre.errors import WriterClosedError
from aisre.store import BatchingWriter


class SlowSink:
    """A real sink that holds each batch until released: lets the queue fill up."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.rows: list[InferenceRecord] = []

    def write_batch(self, records, durable):
        self.release.wait(10)
        self.rows.extend(records)

    def close(self):
        pass


class FlakySink:
    """Fails its first `failures` writes (like a locked or full disk), then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: list[InferenceRecord] = []

    def write_batch(self, records, durable):
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        self.rows.extend(records)

    def close(self):
        pass


def _r(i: int) -> InferenceRecord:
    return InferenceRecord(model="m", version="v1", inputs={"i": i}, prediction=i)


def _fill(writer: BatchingWriter, sink: SlowSink) -> None:
    """Occupy the writer thread with one batch, then fill the queue to capacity."""
    writer.submit(_r(-1))
    writer._wake.set()
    deadline = time.monotonic() + 5
    while writer._queue and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in range(writer.capacity):
        writer.submit(_r(i))


def test_fast_mode_commits_everything_by_flush(store):
    writer = BatchingWriter([store], batch_size=100)
    for i in range(1234):
        writer.submit(_r(i))
    writer.flush()
    assert store.count() == 1234
    assert writer.stats().written == 1234
    writer.close()


def test_drop_policy_counts_every_dropped_record():
    sink = SlowSink()
    writer = BatchingWriter([sink], queue_size=10, overflow="drop", batch_size=1)
    _fill(writer, sink)
    assert writer.submit(_r(100)) is False
    assert writer.submit_many([_r(101), _r(102)]) == 0
    assert writer.stats().dropped == 3
    sink.release.set()
    writer.flush()
    assert len(sink.rows) == 11  # the one being written + 10 queued, none of the dropped
    writer.close()


def test_raise_policy_refuses_and_counts():
    sink = SlowSink()
    writer = BatchingWriter([sink], queue_size=5, overflow="raise", batch_size=1)
    _fill(writer, sink)
    with pytest.raises(QueueFullError, match="queue full"):
        writer.submit(_r(99))
    assert writer.stats().rejected == 1
    sink.release.set()
    writer.close()


def test_block_policy_waits_for_room_then_times_out_loudly():
    sink = SlowSink()
    writer = BatchingWriter([sink], queue_size=5, overflow="block", batch_size=1, block_timeout_s=0.2)
    _fill(writer, sink)
    started = time.monotonic()
    with pytest.raises(QueueFullError, match="not keeping up"):
        writer.submit(_r(99))
    assert time.monotonic() - started >= 0.19
    assert writer.stats().rejected == 1
    # with the sink moving again, a blocked caller gets in
    threading.Timer(0.1, sink.release.set).start()
    writer.block_timeout_s = 5
    assert writer.submit(_r(100)) is True
    writer.close()
    assert len(sink.rows) == 7


def test_failing_sink_is_retried_until_it_works_nothing_lost():
    sink = FlakySink(failures=3)
    writer = BatchingWriter([sink], batch_size=50)
    for i in range(120):
        writer.submit(_r(i))
    writer.flush(timeout=10)
    assert [r.prediction for r in sink.rows] == list(range(120))
    assert writer.stats().write_errors == 3
    writer.close()


def test_durable_submit_returns_only_after_commit(store):
    writer = BatchingWriter([store], durability="durable")
    for i in range(20):
        writer.submit(_r(i))
        assert store.count() == i + 1  # visible to another reader once acknowledged
    writer.close()


def test_durable_mode_group_commits_concurrent_callers(store):
    writer = BatchingWriter([store], durability="durable")
    threads = [threading.Thread(target=lambda: [writer.submit(_r(i)) for i in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 400
    assert writer.stats().batches < 400  # commits were shared
    writer.close()


def test_closed_writer_refuses_new_records(store):
    writer = BatchingWriter([store])
    writer.submit(_r(1))
    writer.close()
    assert store.count() == 1
    with pytest.raises(WriterClosedError):
        writer.submit(_r(2))
