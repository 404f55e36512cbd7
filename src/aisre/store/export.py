"""Export the inference log to Parquet, chunk by chunk, in constant memory."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from aisre.store.base import RecordFilter, Store
from aisre.store.codec import dumps

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def parquet_schema() -> pa.Schema:
    """The export's columns. Built on first export: pyarrow (~100 ms to import) loads only then."""
    import pyarrow as pa

    # JSON-valued fields are kept as JSON text: their shape differs from model to model.
    return pa.schema(
        [
            ("id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("model", pa.string()),
            ("version", pa.string()),
            ("operation", pa.string()),
            ("route", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("latency_s", pa.float64()),
            ("ttft_s", pa.float64()),
            ("tpot_s", pa.float64()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("cost_usd", pa.float64()),
            ("key_id", pa.string()),
            ("trace_id", pa.string()),
            ("replica", pa.string()),
            ("inputs", pa.string()),
            ("prediction", pa.string()),
            ("scores", pa.string()),
            ("output_text", pa.string()),
            ("tags", pa.string()),
            ("label", pa.string()),
            ("label_ts", pa.timestamp("us", tz="UTC")),
        ]
    )


_JSON = {"inputs", "prediction", "scores", "tags"}


def export_parquet(
    store: Store,
    path: str | os.PathLike[str],
    where: RecordFilter = RecordFilter(),
    chunk_size: int = 50_000,
) -> int:
    """Write matching records, with their labels if any, to a Parquet file; returns rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for chunk in store.iter_records(where, chunk_size):
            labels = store.labels_for([r.id for r in chunk])
            columns: dict[str, list] = {name: [] for name in schema.names}
            for r in chunk:
                for name in schema.names[:-2]:
                    value = getattr(r, name)
                    if name == "ts":
                        value = int(value * 1_000_000)
                    elif name in _JSON:
                        value = dumps(value)
                    elif name in ("route", "status"):
                        value = str(value)
                    columns[name].append(value)
                label = labels.get(r.id)
                columns["label"].append(None if label is None else dumps(label.value))
                columns["label_ts"].append(None if label is None else int(label.ts * 1_000_000))
            writer.write_table(pa.table(columns, schema=schema))
            rows += len(chunk)
    return rows
