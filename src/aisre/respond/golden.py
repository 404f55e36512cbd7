"""A golden data set: a CSV or Parquet file read into named columns, with the label, feature and sensitive
columns an evaluation needs picked out; every missing column is named next to the columns found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aisre.errors import DataError


@dataclass(frozen=True)
class GoldenSet:
    """The rows of one file: `X` (rows x features, float64, in `features` order), `y` the labels,
    `sensitive` the columns fairness checks group by."""

    path: str
    sha256: str | None
    label: str
    features: list[str]
    X: np.ndarray
    y: np.ndarray
    sensitive: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        return len(self.y)


def read_columns(path: str) -> dict[str, np.ndarray]:
    """Every column of a .csv/.tsv or .parquet file as a numpy array (nulls: NaN in numbers, None otherwise)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise DataError(f"data: no such file {path}")
    if not p.is_file():
        raise DataError(f"data: {path} is not a file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pq.read_table(p)
        elif suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            table = pacsv.read_csv(p, parse_options=pacsv.ParseOptions(delimiter=delimiter))
        else:
            raise DataError(f"data: expected a .csv, .tsv or .parquet file, got {p.name}")
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"data: cannot read {path}: {exc}") from None
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def golden_set(
    path: str,
    label: str,
    features: Sequence[str] | None,
    *,
    sensitive: Sequence[str] = (),
    exclude: Sequence[str] = (),
    sha256: str | None = None,
) -> GoldenSet:
    """Pick the columns out of the file. `features` None: every column but the label, `sensitive` and `exclude`."""
    columns = read_columns(path)
    found = ", ".join(columns)
    if label not in columns:
        raise DataError(f"label: column {label!r} is not in {path}; columns found: {found}")
    missing = [c for c in sensitive if c not in columns]
    if missing:
        raise DataError(f"fairness.sensitive: column(s) {missing} not in {path}; columns found: {found}")
    if features is None:
        skip = {label, *sensitive, *exclude}
        features = [c for c in columns if c not in skip]
    else:
        missing = [c for c in features if c not in columns]
        if missing:
            raise DataError(f"features: column(s) {missing} not in {path}; columns found: {found}")
        if label in features:
            raise DataError(f"features: the label column {label!r} is listed as a feature")
    if not features:
        raise DataError(f"features: {path} has no feature columns besides the label {label!r}; columns found: {found}")
    if len(columns[label]) == 0:
        raise DataError(f"data: {path} has no rows")
    X = np.column_stack([_numeric(columns[c], c, path) for c in features])
    return GoldenSet(path, sha256, label, list(features), X, columns[label], {c: columns[c] for c in sensitive})


def _numeric(values: Any, column: str, path: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        sample = next((v for v in values if v is not None), None)
        raise DataError(
            f"features: column {column!r} of {path} is not numeric (e.g. {sample!r}); the model takes numbers: "
            "encode it, or leave it out with `exclude` / `features`"
        ) from None
