"""An exported inference dataset (Hive layout DIR/model=X/date=YYYY-MM-DD/*.parquet) as a Spark or Dask frame.

Features are the columns `in_<name>` that `aisre log export --dataset` writes (or, in a dataset
written by hand, columns named like the reference's). Rows are selected by model, optionally
version, and a time window: on `ts_epoch_s` when the dataset has it, else on the `date` partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.engines.common import _require

ENGINES = ("spark", "dask")
FEATURE_PREFIX = "in_"


def feature_map(available: Sequence[str], wanted: Sequence[str]) -> dict[str, str]:
    """{reference column: dataset column}: `in_<name>` first, else the bare name; absent ones left out."""
    have = set(available)
    out = {}
    for name in wanted:
        for candidate in (FEATURE_PREFIX + name, name):
            if candidate in have:
                out[name] = candidate
                break
    return out


def open_dataset(
    engine: str,
    root: str,
    model: str,
    features: Sequence[str],
    version: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> tuple[Any, list[str]]:
    """(frame with the reference's feature names, features the dataset lacks)."""
    if engine not in ENGINES:
        raise InvalidParameterError(f"engine: expected one of {list(ENGINES)}, got {engine!r}")
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"dataset {root}: no such directory (expected DIR/model=X/date=YYYY-MM-DD/*.parquet)")
    if not any(path.rglob("*.parquet")):
        raise DataError(f"dataset {root}: no Parquet files under it (export one with: aisre log export --dataset)")
    if engine == "spark":
        return _spark(root, model, features, version, start, end)
    return _dask(root, model, features, version, start, end)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _spark(root: str, model: str, features: Sequence[str], version: str | None, start: float | None, end: float | None):
    _require("pyspark", "spark", "aisre monitor check --engine spark")
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("aisre-monitor").getOrCreate()
    df = spark.read.option("basePath", root).parquet(root)
    names = df.columns
    if "model" not in names:
        raise DataError(f"dataset {root}: no model column or model=... partition (expected DIR/model=X/...)")
    df = df.filter(F.col("model") == model)
    if version is not None and "version" in names:
        df = df.filter(F.col("version") == version)
    if "ts_epoch_s" in names:
        df = df.filter(F.col("ts_epoch_s") >= start) if start is not None else df
        df = df.filter(F.col("ts_epoch_s") < end) if end is not None else df
    elif "date" in names:
        df = df.filter(F.col("date").cast("string") >= _day(start)) if start is not None else df
        df = df.filter(F.col("date").cast("string") <= _day(end)) if end is not None else df
    found = feature_map(names, features)
    return df.select(*[F.col(f"`{src}`").alias(dst) for dst, src in found.items()]), [
        f for f in features if f not in found
    ]


def _dask(root: str, model: str, features: Sequence[str], version: str | None, start: float | None, end: float | None):
    _require("dask.dataframe", "dask", "aisre monitor check --engine dask")
    import dask.dataframe as dd

    filters: list[tuple[str, str, Any]] = [("model", "==", model)]
    df = dd.read_parquet(root, filters=filters, dataset={"partitioning": "hive"})
    names = [str(c) for c in df.columns]
    if "model" not in names:
        raise DataError(f"dataset {root}: no model column or model=... partition (expected DIR/model=X/...)")
    df = df[df["model"].astype(str) == model]
    if version is not None and "version" in names:
        df = df[df["version"].astype(str) == version]
    if "ts_epoch_s" in names:
        df = df[df["ts_epoch_s"] >= start] if start is not None else df
        df = df[df["ts_epoch_s"] < end] if end is not None else df
    elif "date" in names:
        df = df[df["date"].astype(str) >= _day(start)] if start is not None else df
        df = df[df["date"].astype(str) <= _day(end)] if end is not None else df
    found = feature_map(names, features)
    frame = df[list(found.values())].rename(columns={src: dst for dst, src in found.items()})
    return frame, [f for f in features if f not in found]
