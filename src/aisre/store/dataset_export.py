"""Export the inference log as a Hive-partitioned Parquet dataset, incrementally and crash-safely.

One run: read what is new since the saved cursor, chunk by chunk (constant memory), write each
chunk's rows into one open Parquet writer per partition under a hidden temp name, then publish
(rename) the parts, bring older parts to the final schema if it grew, and save the state file
last. The state file is the commit: a run that dies leaves only hidden temp files or parts whose
run number the state never committed, and the next run deletes those and exports the same records
again, so nothing is duplicated and nothing is missed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisre.errors import InvalidParameterError
from aisre.locks import RunnerLock
from aisre.store.base import Store
from aisre.store.dataset_columns import RowBuilder, file_schema, to_table
from aisre.store.dataset_cursor import Cursor, store_key
from aisre.store.dataset_layout import (
    LOCK_FILE,
    load_state,
    part_files,
    part_name,
    partition_dir,
    partition_values,
    remove_uncommitted,
    save_state,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

MAX_OPEN_WRITERS = 32  # partitions written at once; beyond, the least recent is closed (a new part opens later)


@dataclass(frozen=True, slots=True)
class DatasetExport:
    """What one run did: `bytes` of the parts it published, `seconds` of wall time."""

    dataset: Path
    run: int
    rows: int
    files: int
    bytes: int
    seconds: float
    rewritten: int  # older parts brought to a grown schema
    removed: int  # leftovers of a dead run deleted first


def _write_table(writer: pq.ParquetWriter, table: pa.Table) -> None:
    """One row group into an open part (a seam: the crash tests make it raise)."""
    writer.write_table(table)


@dataclass
class _OpenPart:
    writer: Any
    tmp: Path
    first_seq: int | None
    last_seq: int | None


class _Parts:
    """The open writers of a run, one per partition, and the parts closed so far (still hidden)."""

    def __init__(self, root: Path, keys: tuple[str, ...], run: int, schema: pa.Schema):
        self.root, self.keys, self.run, self.schema = root, keys, run, schema
        self.open: OrderedDict[tuple, _OpenPart] = OrderedDict()
        self.closed: list[tuple[Path, Path]] = []  # (temp, final)
        self.serial = 0

    def write(self, values: tuple, rows: list[dict[str, Any]], seqs: list[int | None]) -> None:
        import pyarrow.parquet as pq

        part = self.open.get(values)
        if part is None:
            if len(self.open) >= MAX_OPEN_WRITERS:
                self._close(next(iter(self.open)))
            folder = partition_dir(self.root, self.keys, values)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".part-{self.run:06d}-{uuid.uuid4().hex}.parquet.tmp"
            writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
            part = self.open[values] = _OpenPart(writer, tmp, seqs[0], seqs[-1])
        self.open.move_to_end(values)
        _write_table(part.writer, to_table(rows, self.schema))
        part.last_seq = seqs[-1]

    def _close(self, values: tuple) -> None:
        part = self.open.pop(values)
        part.writer.close()
        self.serial += 1
        final = part.tmp.parent / part_name(self.run, part.first_seq, part.last_seq, self.serial)
        self.closed.append((part.tmp, final))

    def close_all(self) -> None:
        for values in list(self.open):
            self._close(values)

    def publish(self) -> list[Path]:
        published = []
        for tmp, final in self.closed:
            os.replace(tmp, final)
            published.append(final)
        return published


def conform(root: Path, schema: pa.Schema, batch_rows: int = 50_000) -> int:
    """Rewrite every part whose schema is not `schema` (a column added later is null there); returns how many.

    Streams each part batch by batch and replaces it atomically, so a crash here is harmless: the next
    run finds the same parts still different and rewrites them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rewritten = 0
    for path in part_files(root):
        if pq.read_schema(path).equals(schema, check_metadata=False):
            continue
        tmp = path.with_name(f".{path.name}.conform.tmp")
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in source.iter_batches(batch_size=batch_rows):
                columns = [
                    batch.column(f.name).cast(f.type)
                    if f.name in batch.schema.names
                    else pa.nulls(batch.num_rows, f.type)
                    for f in schema
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
        source.close()
        os.replace(tmp, path)
        rewritten += 1
    return rewritten


def _open_root(root: Path) -> None:
    """Create the dataset directory (and its parents, like Spark's and pandas' writers) and prove it writable."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".aisre-write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidParameterError(f"--dataset: {root} is not a writable directory: {exc.strerror or exc}") from None


def export_dataset(
    store: Store,
    root: str | os.PathLike[str],
    partition_by: tuple[str, ...],
    since: float | None = None,
    until: float | None = None,
    chunk_size: int = 20_000,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetExport:
    """Append what is new in `store` (since the last run into `root`) to the partitioned dataset.

    `since`/`until` (epoch seconds) bound what a run takes; `until` also holds the cursor back, so
    records younger than it are exported by a later run (with the labels that arrived meanwhile).
    `progress(records_read, records_expected)` is called after each chunk."""
    started = time.monotonic()
    path = Path(root)
    _open_root(path)
    lock = RunnerLock(path / LOCK_FILE)
    if not lock.acquire():
        raise InvalidParameterError(f"--dataset: another export is writing {path} right now; run again when it ends")
    try:
        return _export(store, path, partition_by, since, until, chunk_size, progress, started)
    finally:
        lock.release()


def _export(
    store: Store,
    path: Path,
    partition_by: tuple[str, ...],
    since: float | None,
    until: float | None,
    chunk_size: int,
    progress: Callable[[int, int], None] | None,
    started: float,
) -> DatasetExport:
    state = load_state(path, partition_by)
    removed = remove_uncommitted(path, state.runs)
    key = store_key(store)
    cursor = Cursor(store, state.cursors.get(key, {}), since, until)
    expected = cursor.pending()
    start_schema = file_schema(state.column_types, partition_by)
    builder = RowBuilder(state.column_types, state.models)
    run = state.runs + 1
    parts = _Parts(path, partition_by, run, start_schema)
    rows = 0
    try:
        for chunk in cursor.chunks(chunk_size):
            labels = store.labels_for([r.id for _, r in chunk])
            groups: dict[tuple, tuple[list[dict[str, Any]], list[int | None]]] = {}
            for seq, r in chunk:
                values = partition_values(partition_by, r.model, r.version, str(r.route), str(r.status), r.ts)
                group = groups.setdefault(values, ([], []))
                group[0].append(builder.row(r, labels.get(r.id)))
                group[1].append(seq)
            schema = file_schema(state.column_types, partition_by)
            if not schema.equals(parts.schema):
                parts.close_all()  # a new column: later parts carry it, `conform` fixes the earlier ones
                parts.schema = schema
            for values, (group_rows, seqs) in groups.items():
                parts.write(values, group_rows, seqs)
            rows += len(chunk)
            if progress is not None:
                progress(rows, max(expected, rows))
    except BaseException:
        for part in parts.open.values():  # the temp parts stay hidden; the next run deletes them
            part.writer.close()
        raise
    parts.close_all()
    published = parts.publish()
    final_schema = file_schema(state.column_types, partition_by)
    # A dead run may have died inside `conform`: then parts can hold columns the state never committed.
    rewritten = 0 if final_schema.equals(start_schema) and not removed else conform(path, final_schema)
    state.cursors[key] = cursor.next
    state.runs = run
    state.rows += rows
    save_state(path, state)
    return DatasetExport(
        dataset=path,
        run=run,
        rows=rows,
        files=len(published),
        bytes=sum(p.stat().st_size for p in published),
        seconds=time.monotonic() - started,
        rewritten=rewritten,
        removed=removed,
    )
