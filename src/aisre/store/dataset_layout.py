"""The on-disk layout of an exported dataset: Hive partition paths, part names and the state file.

A dataset is a directory of Hive-style partitions (`model=fraud/date=2026-01-01/`) holding Parquet
parts, plus `_aisre_export.json`, the state that makes exports incremental. Readers (Spark, Dask,
DuckDB, pyarrow) skip names starting with `_` or `.`, and the state file and the in-progress parts
(`.part-*.parquet.tmp`) are named so that neither is ever read as data.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisre.errors import InvalidParameterError

STATE_FILE = "_aisre_export.json"
LOCK_FILE = "_aisre_export.lock"  # an flock: one export into a dataset at a time
STATE_FORMAT = 1
PARTITION_KEYS: tuple[str, ...] = ("model", "version", "date", "hour", "route", "status")
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's (and Spark's) name for an empty or null value

# Hive's FileUtils.escapePathName set (Spark uses the same one): each is written as %XX.
# Every reader URL-decodes partition values, so this round-trips in pyarrow, DuckDB, Dask and Spark.
_ESCAPED = set("\"#%'*/:=?\\\x7f{[]^") | {chr(c) for c in range(0x01, 0x20)}
_PART = re.compile(r"^part-(\d{6})-.*\.parquet$")


def parse_partition_by(text: str) -> tuple[str, ...]:
    """`"model,date"` -> ("model", "date"); an unknown, repeated or missing key is an error naming the option."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    allowed = ", ".join(PARTITION_KEYS)
    if not keys:
        raise InvalidParameterError(f"--partition-by: expected one or more of {allowed}, got {text!r}")
    for key in keys:
        if key not in PARTITION_KEYS:
            raise InvalidParameterError(f"--partition-by: unknown key {key!r}; expected a comma list of {allowed}")
    if len(set(keys)) != len(keys):
        raise InvalidParameterError(f"--partition-by: each key once, got {text!r}")
    return keys


def escape_value(value: str) -> str:
    """A partition value as Hive writes it in a path (`a/b` -> `a%2Fb`; empty -> the default partition)."""
    if value == "":
        return DEFAULT_PARTITION
    return "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in value)


@functools.lru_cache(maxsize=4096)
def _date_hour(epoch_hour: int) -> tuple[str, str]:
    """(YYYY-MM-DD, HH) in UTC of an hour since the epoch: cached, as a run's records share few hours."""
    stamp = dt.datetime.fromtimestamp(epoch_hour * 3600, dt.UTC)
    return stamp.strftime("%Y-%m-%d"), stamp.strftime("%H")


def partition_values(keys: tuple[str, ...], model: str, version: str, route: str, status: str, ts: float) -> tuple:
    """The value of each partition key for one record; `date` is YYYY-MM-DD and `hour` HH, both in UTC."""
    values = []
    for key in keys:
        if key == "date":
            values.append(_date_hour(int(ts // 3600))[0])
        elif key == "hour":
            values.append(_date_hour(int(ts // 3600))[1])
        else:
            values.append({"model": model, "version": version, "route": route, "status": status}[key])
    return tuple(values)


def partition_dir(root: Path, keys: tuple[str, ...], values: tuple) -> Path:
    return root.joinpath(*(f"{k}={escape_value(str(v))}" for k, v in zip(keys, values, strict=True)))


def part_name(run: int, first_seq: int | None, last_seq: int | None, serial: int) -> str:
    """`part-<run>-<first seq>-<last seq>.parquet`: the run number lets a later run find a dead run's parts."""
    span = f"{first_seq}-{last_seq}" if first_seq is not None else f"n{serial}"
    return f"part-{run:06d}-{span}-{serial:04d}.parquet"


def part_files(root: Path) -> list[Path]:
    """Every published part of the dataset, sorted."""
    return sorted(p for p in root.rglob("part-*.parquet") if _PART.match(p.name))


@dataclass
class ExportState:
    """What `_aisre_export.json` keeps: the layout, the column types, and a cursor per store."""

    partition_by: tuple[str, ...]
    column_types: dict[str, str] = field(default_factory=dict)  # column -> "double" | "bool" | "string"
    models: dict[str, list[str]] = field(default_factory=dict)  # model -> its input feature columns
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)  # store URL -> {"seq": n} or {"ts", "ids"}
    runs: int = 0
    rows: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "partition_by": list(self.partition_by),
            "column_types": dict(sorted(self.column_types.items())),
            "models": {m: sorted(cols) for m, cols in sorted(self.models.items())},
            "cursors": self.cursors,
            "runs": self.runs,
            "rows": self.rows,
        }


def load_state(root: Path, partition_by: tuple[str, ...]) -> ExportState:
    """The dataset's state, or a fresh one; refuses a different --partition-by for an existing dataset."""
    path = root / STATE_FILE
    if not path.exists():
        if part_files(root):
            raise InvalidParameterError(
                f"--dataset: {root} holds Parquet parts but no {STATE_FILE}; export into an empty or new directory"
            )
        return ExportState(partition_by)
    try:
        data = json.loads(path.read_text())
        state = ExportState(
            partition_by=tuple(data["partition_by"]),
            column_types=dict(data["column_types"]),
            models={m: list(c) for m, c in data["models"].items()},
            cursors=dict(data["cursors"]),
            runs=int(data["runs"]),
            rows=int(data["rows"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterError(f"--dataset: cannot read {path}: {exc}") from None
    if state.partition_by != partition_by:
        raise InvalidParameterError(
            f"--partition-by: {root} is partitioned by {','.join(state.partition_by)}, got {','.join(partition_by)};"
            " a dataset keeps its layout: export into a new --dataset directory to change it"
        )
    return state


def save_state(root: Path, state: ExportState) -> None:
    """Atomically replace the state file: written last, it is what commits a run."""
    tmp = root / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, root / STATE_FILE)


def remove_uncommitted(root: Path, committed_runs: int) -> int:
    """Delete what a dead run left: temp parts, and published parts of a run the state never committed."""
    removed = 0
    for path in root.rglob(".part-*.parquet.tmp"):
        path.unlink()
        removed += 1
    for path in part_files(root):
        match = _PART.match(path.name)
        if match and int(match[1]) > committed_runs:
            path.unlink()
            removed += 1
    return removed
