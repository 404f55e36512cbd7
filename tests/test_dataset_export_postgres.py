"""`aisre log export --dataset` from a PostgreSQL store: the exact `seq > cursor` (issue #12 (f)).

The cursor is exact there only because every `write_batch` takes the `RECORDS_LOCK` advisory lock before its
inserts take their `seq`s and holds it to COMMIT; the concurrent test below is what fails if a write path
ever stops doing so (records committed after a reader passed their `seq`: missed).
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from pathlib import Path
from typing import Any

from aisre.store.dataset_cursor import Cursor
from aisre.store.dataset_export import export_dataset
from aisre.store.postgres import PostgresStore
from tests.postgres_helpers import pg_server, pg_url  # noqa: F401 - fixtures (hence the F811s below)
from tests.test_dataset_export import DAY, T0, dataset_rows, expected_rows, label_some, make_records, read_pyarrow

WRITERS = 3
BATCHES = 20


def _writer(url: str, writer: int, batches: int) -> None:
    """One writer process: small batches (as the gateway's writer sends them), timestamps out of order on
    purpose (a batch written later can hold older records: what fools a time cursor)."""
    store = PostgresStore(url)
    rng = random.Random(writer)
    try:
        for b in range(batches):
            start = T0 + rng.uniform(0, 5 * DAY)
            store.write_batch(make_records(rng.randint(1, 40), start, seed=writer * 1000 + b))
            time.sleep(rng.uniform(0, 0.01))
    finally:
        store.close()


class _TimeCursorOnly:
    """The store as the export saw it before PostgreSQL had the exact cursor: same URL, no seq reads."""

    def __init__(self, store: PostgresStore):
        self._store = store
        self.url = store.url

    def __getattr__(self, name: str) -> Any:
        if name in ("max_seq", "iter_seq_records"):
            raise AttributeError(name)
        return getattr(self._store, name)


def test_postgres_store_gets_the_exact_seq_cursor(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = PostgresStore(pg_url)
    store.write_batch(make_records(30, T0))
    cursor = Cursor(store, {}, None, None)
    assert cursor.seq_reader is not None and cursor.upto == 30 and cursor.pending() == 30
    got = [r.id for chunk in cursor.chunks(7) for _, r in chunk]
    assert len(got) == 30 and cursor.next == {"seq": 30}
    store.close()


def test_incremental_exports_from_postgres_equal_the_store_with_labels(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = PostgresStore(pg_url)
    first = make_records(50, T0)
    store.write_batch(first)
    label_some(store, first)
    run1 = export_dataset(store, tmp_path / "ds", ("model", "date"), chunk_size=13)
    late = make_records(20, T0 - DAY, seed=7)  # committed after the first run, older than everything in it
    store.write_batch(late)
    run2 = export_dataset(store, tmp_path / "ds", ("model", "date"), chunk_size=13)
    assert (run1.rows, run2.rows) == (50, 20)
    assert export_dataset(store, tmp_path / "ds", ("model", "date")).rows == 0
    assert dataset_rows(read_pyarrow(tmp_path / "ds")) == expected_rows(store)
    store.close()


def test_a_saved_time_cursor_moves_to_the_seq_cursor_without_repeating_records(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = PostgresStore(pg_url)
    store.write_batch(make_records(40, T0))
    old = export_dataset(_TimeCursorOnly(store), tmp_path / "ds", ("model",))  # type: ignore[arg-type]
    assert old.rows == 40
    store.write_batch(make_records(25, T0 + 200 * DAY, seed=3))
    assert export_dataset(store, tmp_path / "ds", ("model",)).rows == 25
    store.write_batch(make_records(5, T0 - DAY, seed=4))  # older than the old time cursor: the seq cursor sees it
    assert export_dataset(store, tmp_path / "ds", ("model",)).rows == 5
    assert dataset_rows(read_pyarrow(tmp_path / "ds")) == expected_rows(store)
    store.close()


def test_exports_running_while_writer_processes_commit_hold_every_record_exactly_once(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = PostgresStore(pg_url)
    # Each insert then lingers up to 20 ms before its COMMIT (a writer on a far host, a slow disk): without the
    # lock, a batch that took a lower seq commits after one that took a higher seq, well within an export's reach.
    store._connection().execute(
        "CREATE FUNCTION linger() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_sleep(random() * 0.02); RETURN NULL; END $$;"
        " CREATE TRIGGER linger AFTER INSERT ON inferences FOR EACH STATEMENT EXECUTE FUNCTION linger()"
    )
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(pg_url, w, BATCHES)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    runs_during_writes = rows_during_writes = 0
    # Threads too: the same process's writer thread and the export interleave as in `aisre serve` + a cron export.
    threads = [threading.Thread(target=_writer, args=(pg_url, 100 + t, BATCHES // 2)) for t in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    while any(p.is_alive() for p in procs) or any(t.is_alive() for t in threads):
        assert time.monotonic() < deadline, "the writers did not finish in 300 s"
        run = export_dataset(store, tmp_path / "ds", ("model",), chunk_size=50)
        runs_during_writes += 1
        rows_during_writes += run.rows
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for t in threads:
        t.join(60)
    export_dataset(store, tmp_path / "ds", ("model",))
    stored = expected_rows(store)
    got = dataset_rows(read_pyarrow(tmp_path / "ds"))  # fails on a record exported twice
    missed = set(stored) - set(got)
    assert not missed, f"{len(missed)} of {len(stored)} records were never exported"
    assert got == stored
    assert runs_during_writes >= 2 and 0 < rows_during_writes, "no export ran while the writers were writing"
    store.close()
