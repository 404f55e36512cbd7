"""Records (with labels) to typed Arrow columns for the partitioned dataset, one schema for every file.

Inputs that are flat dicts of scalars become one column per feature (`in_<name>`); the prediction and
the label, when scalar, get a typed column too. A column's type is fixed the first time a value is
seen and kept in the dataset's state, so every file of every run agrees: numbers are float64 (an int
feature that later shows a 0.5 must not split the dataset in two types), bools bool, text string. A
value that does not fit (a nested dict, a string where numbers were seen, a feature beyond the first
1000 columns) is never dropped: the whole field is kept as JSON text in `inputs_json` /
`prediction_json` / `label_json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aisre.records import InferenceRecord, Label
from aisre.store.codec import dumps

if TYPE_CHECKING:
    import pyarrow as pa

FEATURE_PREFIX = "in_"
MAX_TYPED_COLUMNS = 1000  # features (+ prediction, label) with a column; beyond, a record keeps JSON

# (name, arrow type) of the fixed columns, in file order; the typed ones are inserted by `file_schema`.
_HEAD = (
    ("id", "string"),
    ("ts", "timestamp"),
    ("ts_epoch_s", "double"),
    ("model", "string"),
    ("version", "string"),
    ("operation", "string"),
    ("route", "string"),
    ("status", "string"),
    ("error", "string"),
    ("latency_s", "double"),
    ("ttft_s", "double"),
    ("tpot_s", "double"),
    ("input_tokens", "int64"),
    ("output_tokens", "int64"),
    ("cost_usd", "double"),
    ("key_id", "string"),
    ("trace_id", "string"),
    ("replica", "string"),
)
_TAIL = (
    ("inputs_json", "string"),
    ("prediction_json", "string"),
    ("scores_json", "string"),
    ("output_text", "string"),
    ("label_json", "string"),
    ("label_ts", "timestamp"),
    ("tags", "tags"),
)


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "double": pa.float64(),
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "tags": pa.map_(pa.string(), pa.string()),
    }[kind]


def kind_of(value: Any) -> str | None:
    """The column kind a scalar belongs to, or None for anything that is not a scalar."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "double"
    if isinstance(value, str):
        return "string"
    return None


def file_schema(column_types: dict[str, str], partition_by: Sequence[str]) -> pa.Schema:
    """The schema of every part file: fixed columns, typed prediction/label, features sorted, minus partitions."""
    import pyarrow as pa

    typed = [c for c in ("prediction", "label") if c in column_types]
    features = sorted(c for c in column_types if c.startswith(FEATURE_PREFIX))
    names = [(n, k) for n, k in _HEAD] + [(c, column_types[c]) for c in typed + features] + list(_TAIL)
    return pa.schema([(n, _arrow_type(k)) for n, k in names if n not in partition_by])


class RowBuilder:
    """Turns records into row dicts, growing `column_types` (and the per-model feature lists) as it goes."""

    def __init__(self, column_types: dict[str, str], models: dict[str, list[str]]):
        self.column_types = column_types
        self.models = models
        self._seen: dict[str, set[str]] = {}

    def _typed(self, row: dict[str, Any], column: str, value: Any) -> bool:
        """Put a scalar in its typed column; False if it cannot go there (then the caller keeps JSON)."""
        if value is None:
            return True
        kind = kind_of(value)
        if kind is None:
            return False
        known = self.column_types.get(column)
        if known is None:
            if len(self.column_types) >= MAX_TYPED_COLUMNS:
                return False  # inputs keyed by free text must not grow the schema without end
            known = self.column_types[column] = kind
        if known != kind:
            return False
        row[column] = float(value) if kind == "double" else value
        return True

    def row(self, r: InferenceRecord, label: Label | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": r.id,
            "ts": int(round(r.ts * 1_000_000)),
            "ts_epoch_s": r.ts,
            "model": r.model,
            "version": r.version,
            "operation": r.operation,
            "route": str(r.route),
            "status": str(r.status),
            "error": r.error,
            "latency_s": r.latency_s,
            "ttft_s": r.ttft_s,
            "tpot_s": r.tpot_s,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "cost_usd": r.cost_usd,
            "key_id": r.key_id,
            "trace_id": r.trace_id,
            "replica": r.replica,
            "scores_json": dumps(r.scores),
            "output_text": r.output_text,
            "tags": [(str(k), str(v)) for k, v in r.tags.items()] if r.tags else None,
        }
        self._inputs(row, r)
        if not self._typed(row, "prediction", r.prediction):
            row["prediction_json"] = dumps(r.prediction)
        if label is not None:
            row["label_ts"] = int(round(label.ts * 1_000_000))
            if not self._typed(row, "label", label.value):
                row["label_json"] = dumps(label.value)
        return row

    def _inputs(self, row: dict[str, Any], r: InferenceRecord) -> None:
        inputs = r.inputs
        if not isinstance(inputs, dict):
            row["inputs_json"] = dumps(inputs)
            return
        whole = True
        seen = self._seen.get(r.model)
        if seen is None:
            seen = self._seen[r.model] = set(self.models.setdefault(r.model, []))
        for name, value in inputs.items():
            column = FEATURE_PREFIX + str(name)
            whole = self._typed(row, column, value) and whole
            if column not in seen and column in self.column_types:
                seen.add(column)
                self.models[r.model].append(column)
        if not whole:
            row["inputs_json"] = dumps(inputs)


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    return pa.table({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)
