"""Shared data for the Spark and Dask engine tests: ~25 mixed columns, some drifted, a few partitions."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aisre

ROWS = 4000
#: Columns built to drift between reference and current (the others do not).
DRIFTED = ("num_shift_0", "num_shift_1", "num_scale", "cat_shift", "few_shift", "num_tail")


@contextmanager
def local_spark(app_name: str) -> Iterator[Any]:
    """A real local[2] Spark session sized for the tests (no UI, 4 shuffle partitions, 1 GB driver), stopped after."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


def frames(rows: int = ROWS, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): 14 continuous, 4 few-valued numeric, 7 categorical columns; NaN, inf, None sprinkled in."""
    rng = np.random.default_rng(seed)

    def table(drifted: bool) -> pd.DataFrame:
        cols: dict[str, object] = {}
        for i in range(2):
            cols[f"num_shift_{i}"] = rng.normal(0.5 if drifted else 0.0, 1.0, rows)
        cols["num_scale"] = rng.normal(0, 2.0 if drifted else 1.0, rows)
        cols["num_tail"] = rng.lognormal(0.6 if drifted else 0.0, 1.0, rows)
        for i in range(10):
            cols[f"num_same_{i}"] = rng.normal(i, 1 + i / 4, rows)
        for i in range(3):
            cols[f"few_same_{i}"] = rng.integers(0, 4, rows).astype(float)
        cols["few_shift"] = rng.choice([0.0, 1.0, 2.0], rows, p=[0.2, 0.3, 0.5] if drifted else [0.4, 0.3, 0.3])
        for i in range(6):
            cols[f"cat_same_{i}"] = rng.choice([f"c{k}" for k in range(3 + 2 * i)], rows)
        shares = [0.5, 0.2, 0.2, 0.1] if drifted else [0.25, 0.25, 0.25, 0.25]
        cols["cat_shift"] = rng.choice(["a", "b", "c", "d"], rows, p=shares)
        df = pd.DataFrame(cols)
        df.loc[rng.choice(rows, 40, replace=False), "num_same_0"] = np.nan
        df.loc[rng.choice(rows, 5, replace=False), "num_same_1"] = np.inf
        df.loc[rng.choice(rows, 3, replace=False), "num_same_1"] = -np.inf
        df.loc[rng.choice(rows, 30, replace=False), "cat_same_0"] = None
        if drifted:
            df.loc[rng.choice(rows, 3, replace=False), "cat_same_1"] = "unseen"
        return df

    return table(False), table(True)


def one_machine(reference: pd.DataFrame, current: pd.DataFrame, **options: object) -> aisre.monitor.DatasetDrift:
    return aisre.drift(reference, current, **options)


#: Statistics computed from merged counts: equal to the one-machine result to float rounding.
EXACT = ("jensenshannon", "psi", "hellinger", "chisquare", "z", "linfinity")


def assert_same_as_one_machine(exact: aisre.monitor.DatasetDrift, got: aisre.monitor.DatasetDrift) -> None:
    """Same methods and verdicts per column; counted statistics to 1e-12; sketch ones within their bound."""
    assert list(got.columns) == list(exact.columns)
    for name, want in exact.columns.items():
        r = got.columns[name]
        assert (r.method, r.drift) == (want.method, want.drift), name
        for key in ("n_reference", "n_current", "missing_reference", "missing_current"):
            assert r.details[key] == want.details[key], (name, key)
        if want.method in EXACT:
            assert r.statistic == pytest.approx(want.statistic, rel=1e-12, abs=1e-12), name
            if want.p_value is not None:
                assert r.p_value == pytest.approx(want.p_value, rel=1e-9, abs=1e-12), name
        else:
            assert abs(r.statistic - want.statistic) <= r.details["error_bound"] + 1e-9, name
    assert got.dataset_drift == exact.dataset_drift
    assert got.share_drifted == exact.share_drifted


def write_dataset(root: Path, frame: pd.DataFrame, model: str, days: list[str]) -> None:
    """The Hive layout `aisre log export --dataset` writes: DIR/model=X/date=D/part-*.parquet, features as in_<name>."""
    chunks = np.array_split(np.arange(len(frame)), len(days))
    for day, rows in zip(days, chunks, strict=True):
        folder = root / f"model={model}" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part = frame.iloc[rows].rename(columns=lambda c: f"in_{c}").reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / "part-0.parquet")


def fairness_frame(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Predictions, labels (some missing) and two sensitive columns (some missing)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "sex": rng.choice(["f", "m", None], rows, p=[0.45, 0.5, 0.05]),
            "age": rng.choice(["young", "old"], rows),
            "label": rng.integers(0, 2, rows).astype(float),
            "pred": (rng.random(rows) < 0.4).astype(float),
        }
    )
    df.loc[rng.choice(rows, 40, replace=False), "label"] = np.nan
    return df


def assert_same_fairness(want: Any, got: Any) -> None:
    # DataFrame.equals: NaN (an undefined rate) equals NaN
    assert pd.DataFrame(got.table()).equals(pd.DataFrame(want.table()))
    assert pd.DataFrame([asdict(got.overall)]).equals(pd.DataFrame([asdict(want.overall)]))
    assert got.summary() == pytest.approx(want.summary(), nan_ok=True)
    assert (got.notes, got.sensitive_feature, got.breaches) == (want.notes, want.sensitive_feature, want.breaches)


#: Multiclass probability columns, in class order a, b, c.
CLASS_SCORES = ("p_a", "p_b", "p_c")


def performance_frame(rows: int = 2000, seed: int = 3) -> pd.DataFrame:
    """Binary labels (some missing), fine and coarse scores, regression targets (some missing), 3 classes."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows).astype(float)
    score = np.clip(0.3 * label + rng.random(rows) * 0.7, 0, 1)
    df = pd.DataFrame(
        {
            "label": label,
            "score": score,
            "coarse": np.round(score, 1),  # few distinct values, many ties
            "pred": (score >= 0.5).astype(float),
            "y": rng.normal(10, 3, rows),
            "cls": rng.choice(["a", "b", "c"], rows),
            "pcls": rng.choice(["a", "b", "c"], rows),
        }
    )
    df["yhat"] = df["y"] + rng.normal(0, 1, rows)
    raw = rng.random((rows, 3)) + 0.5 * (df["cls"].to_numpy()[:, None] == np.array(["a", "b", "c"]))
    for j, name in enumerate(CLASS_SCORES):
        df[name] = raw[:, j] / raw.sum(axis=1)
    df.loc[rng.choice(rows, 30, replace=False), "label"] = np.nan
    df.loc[rng.choice(rows, 20, replace=False), "y"] = np.nan
    return df


#: Metrics whose intervals aisre.performance bootstraps over raw rows: Poisson-bootstrapped on a distributed frame.
ROW_BOOTSTRAP = ("log_loss", "mae", "mse", "rmse", "mape", "r2")


def assert_interval_agrees(want: Any, got: Any, share: float = 0.15) -> None:
    """A Poisson-bootstrap interval vs the one-machine row bootstrap: each end within `share` of the width."""
    width = want.upper - want.lower
    assert got.method == "poisson_bootstrap", (want.name, got)
    assert abs(got.lower - want.lower) <= share * width and abs(got.upper - want.upper) <= share * width, (want, got)
    assert got.lower <= got.value <= got.upper, got


def assert_same_performance(want: Any, got: Any) -> None:
    """Counts-based metrics and intervals exactly; sums-based values to 1e-12 relative (summation order)."""
    assert (got.task, got.n, got.classes, got.pos_label) == (want.task, want.n, want.classes, want.pos_label)
    assert set(got.metrics) == set(want.metrics)
    for name, w in want.metrics.items():
        g = got.metrics[name]
        assert g.n == w.n, name
        if name in ROW_BOOTSTRAP or (name == "roc_auc" and w.method == "bootstrap"):  # incl. multiclass OvR AUC
            assert g.value == pytest.approx(w.value, rel=1e-12, abs=1e-15, nan_ok=True), name
            if np.isnan(w.lower):
                assert np.isnan(g.lower) and np.isnan(g.upper), (name, g)
            else:
                assert_interval_agrees(w, g)
        elif name == "roc_auc":  # DeLong from per-score counts: the same sums, grouped
            assert (g.value, g.lower, g.upper) == pytest.approx((w.value, w.lower, w.upper), rel=1e-12, nan_ok=True)
            assert g.method == w.method
        else:  # Wilson and the multinomial count bootstrap are functions of the confusion counts
            assert g.method == w.method, name
            assert (g.value, g.lower, g.upper) == pytest.approx((w.value, w.lower, w.upper), rel=0, abs=0, nan_ok=True)


def assert_performance_on_frame(df: pd.DataFrame, frame: Any) -> None:
    """Binary (predictions, fine scores, coarse tied scores), regression and multiclass on `frame` = one machine."""
    cases = [
        ((df["label"], df["pred"], df["score"]), ("label", "pred", "score"), {}),
        ((df["label"], None, df["coarse"]), ("label", None, "coarse"), {"decision_threshold": 0.4}),
        ((df["y"], df["yhat"]), ("y", "yhat"), {"task": "regression"}),
        ((df["cls"], df["pcls"]), ("cls", "pcls"), {"task": "multiclass"}),
        ((df["cls"], None, df[list(CLASS_SCORES)]), ("cls", None, list(CLASS_SCORES)), {"task": "multiclass"}),
        ((df["cls"], df["pcls"], df[list(CLASS_SCORES)]), ("cls", "pcls", list(CLASS_SCORES)), {"task": "multiclass"}),
    ]
    for arrays, columns, options in cases:
        want = aisre.performance(*arrays, **options)
        assert_same_performance(want, aisre.performance(*columns, data=frame, **options))


#: aisre.performance calls with Poisson-bootstrap intervals on a frame: (column names, options).
POISSON_CASES = [
    (("y", "yhat"), {"task": "regression"}),
    (("label", "pred", "score"), {"metrics": ["roc_auc", "log_loss"], "auc_interval": "bootstrap"}),
    (("cls", None, list(CLASS_SCORES)), {"task": "multiclass", "metrics": ["roc_auc", "log_loss"]}),
]


def chunks_of(df: pd.DataFrame, parts: int) -> list[pd.DataFrame]:
    """Contiguous row ranges: the partitions an engine frame built from them must hold, in order."""
    size = -(-len(df) // parts)
    return [df.iloc[i * size : (i + 1) * size] for i in range(parts)]


class ChunkEngine:
    """Partitions as a list of pandas frames, run here: what any engine on that partitioning must return."""

    name = "chunks"

    def columns(self, frame: list[pd.DataFrame]) -> list[str]:
        return list(frame[0].columns)

    def map_partitions(self, frame: list[pd.DataFrame], columns: Any, fn: Any, codec: Any) -> list[Any]:
        from aisre.monitor.tabular.frame import to_columns

        return [codec.decode(codec.encode(fn(to_columns(part[list(columns)])))) for part in frame if len(part)]


def on_chunks(chunks: list[pd.DataFrame], columns: Any, **options: Any) -> Any:
    from aisre.monitor.engines import performance as engine_performance

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_performance, "engine_for", lambda frame: ChunkEngine())
        return aisre.performance(*columns, data=chunks, **options)


def assert_poisson_intervals_on_partitions(df: pd.DataFrame, chunks: list[pd.DataFrame], frame: Any) -> None:
    """On `frame` (partitioned as `chunks`): the chunk reference to 1e-12 (so Spark = Dask), one machine within
    Monte-Carlo tolerance, the point inside its interval, the same interval on a rerun, another with another seed."""
    for columns, options in POISSON_CASES:
        got = aisre.performance(*columns, data=frame, **options)
        reference = on_chunks(chunks, columns, **options)
        want = aisre.performance(*(None if c is None else df[c] for c in columns), **options)
        for name, g in got.metrics.items():
            r = reference.metrics[name]
            assert (g.value, g.lower, g.upper) == pytest.approx((r.value, r.lower, r.upper), rel=1e-12), name
            assert_interval_agrees(want.metrics[name], g)
    columns, options = POISSON_CASES[0]
    first = aisre.performance(*columns, data=frame, **options)["mae"]
    assert aisre.performance(*columns, data=frame, **options)["mae"] == first
    assert aisre.performance(*columns, data=frame, seed=11, **options)["mae"].lower != first.lower
