"""aisre.drift on Spark DataFrames (a real local[2] Spark, mapInArrow): the one-machine verdicts and numbers."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (make test installs openjdk-17-jre-headless)", allow_module_level=True)

import aisre  # noqa: E402
from aisre.errors import MissingDependencyError  # noqa: E402
from aisre.monitor.engines.common import engine_for  # noqa: E402
from tests.engine_helpers import (
    DRIFTED,
    assert_performance_on_frame,
    assert_poisson_intervals_on_partitions,
    assert_same_as_one_machine,
    assert_same_fairness,
    chunks_of,
    fairness_frame,
    frames,
    local_spark,
    performance_frame,
    write_dataset,
)  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    with local_spark("aisre-tests") as session:
        yield session


@pytest.fixture(scope="module")
def data():
    return frames()


@pytest.fixture(scope="module")
def sdf(spark, data):
    """Both windows as cached Spark frames of 3 and 4 partitions (every pass then reads the cache)."""
    ref, cur = (spark.createDataFrame(df).repartition(n).cache() for df, n in zip(data, (3, 4), strict=True))
    assert ref.count() == len(data[0]) and cur.count() == len(data[1])
    assert ref.rdd.getNumPartitions() == 3
    yield ref, cur
    ref.unpersist()
    cur.unpersist()


def test_auto_drift_on_spark_equals_one_machine(sdf, data):
    ref, cur = data
    exact = aisre.drift(ref, cur)
    got = aisre.drift(*sdf)
    assert_same_as_one_machine(exact, got)
    assert set(got.drifted_columns) == set(DRIFTED)
    assert got.columns["num_same_0"].details["engine"] == "spark/spark"


def test_histogram_methods_on_spark_use_the_exact_reference_deciles(sdf, data):
    ref, cur = data
    exact = aisre.drift(ref, cur, method="jensenshannon")
    got = aisre.drift(*sdf, method="jensenshannon")
    assert_same_as_one_machine(exact, got)
    assert got.columns["num_shift_0"].details["bin_edges"] == exact.columns["num_shift_0"].details["bin_edges"]


def test_ks_with_a_local_reference_and_a_spark_window_is_within_its_bound(sdf, data):
    ref, cur = data
    numeric = [c for c in ref if ref[c].dtype.kind == "f"]
    exact = aisre.drift(ref, cur, method="ks", columns=numeric)
    got = aisre.drift(ref, sdf[1], method="ks", columns=numeric)
    assert_same_as_one_machine(exact, got)


def test_fairness_of_a_spark_frame_equals_the_one_process_report(spark):
    from aisre.monitor.engines import fairness

    df = fairness_frame()
    frame = spark.createDataFrame(df).repartition(3)
    assert_same_fairness(aisre.fairness(df["label"], df["pred"], df["sex"]), fairness(frame, "pred", "sex", "label"))


def test_column_names_with_dots_and_backticks_are_read_as_names(spark, data):
    ref, cur = (df[["num_shift_0", "cat_same_2"]].set_axis(["a.b", "odd `name`"], axis=1) for df in data)
    exact = aisre.drift(ref, cur)
    got = aisre.drift(spark.createDataFrame(ref), spark.createDataFrame(cur))
    assert_same_as_one_machine(exact, got)
    assert got.drifted_columns == ["a.b"]


def test_a_spark_frame_without_pyspark_installed_names_the_extra(spark, data, monkeypatch):
    frame = spark.createDataFrame(data[0].iloc[:10])
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now fails
    with pytest.raises(MissingDependencyError, match=r"aisre\[spark\]"):
        engine_for(frame)


def test_monitor_check_over_an_exported_dataset_on_spark(spark, data, tmp_path):
    from typer.testing import CliRunner

    from aisre.cli.main import app

    ref, cur = data
    ref.to_parquet(tmp_path / "ref.parquet")
    write_dataset(tmp_path / "ds", cur, "churn", ["2026-12-01", "2026-12-02", "2026-12-03"])
    args = ["monitor", "check", "--engine", "spark", "--dataset", str(tmp_path / "ds"), "-m", "churn"]
    result = CliRunner().invoke(app, [*args, "-r", str(tmp_path / "ref.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {c for c, r in report["columns"].items() if r["drift"]} == set(DRIFTED)
    window = CliRunner().invoke(
        app,
        [
            *args,
            "-r",
            str(tmp_path / "ref.parquet"),
            "--since",
            "2026-12-05T00:00:00Z",
            "--until",
            "2026-12-06T00:00:00Z",
        ],
    )
    assert window.exit_code == 3 and "no data" in window.output


def test_an_exported_dataset_read_by_spark_equals_the_store(spark, tmp_path):
    """`aisre log export --dataset` (Hive partitions) is one table to Spark, record for record."""
    from aisre.store.dataset_export import export_dataset
    from tests.test_dataset_export import T0, dataset_rows, expected_rows, label_some, make_records

    store = aisre.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        records = make_records(60, T0)
        store.write_batch(records)
        label_some(store, records)
        export_dataset(store, tmp_path / "ds", ("model", "date"), chunk_size=25)
        previous = spark.conf.get("spark.sql.session.timeZone")
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        try:
            frame = spark.read.parquet(str(tmp_path / "ds")).toPandas()
        finally:
            spark.conf.set("spark.sql.session.timeZone", previous)
        assert dataset_rows(frame) == expected_rows(store)
    finally:
        store.close()


def test_performance_and_fairness_of_a_spark_frame_equal_one_machine(spark):
    df = performance_frame()
    assert_performance_on_frame(df, spark.createDataFrame(df).repartition(3))
    fair = fairness_frame()
    frame = spark.createDataFrame(fair).repartition(3)
    assert_same_fairness(
        aisre.fairness(fair["label"], fair["pred"], fair["sex"]), aisre.fairness("label", "pred", "sex", data=frame)
    )
    with pytest.raises(aisre.InvalidParameterError, match=r"y_true: .*'truth'.*it has"):
        aisre.performance("truth", "pred", data=frame)


def test_poisson_bootstrap_intervals_on_spark_match_the_same_partitions_anywhere_and_one_machine(spark):
    """Partitions holding row ranges in order (parallelize slices contiguously): the chunk reference, which the
    Dask test checks too, so Spark = Dask on one partitioning; and the one-machine bootstrap within tolerance."""
    df = performance_frame(3000, seed=5)
    chunks = chunks_of(df, 3)
    rows = spark.sparkContext.parallelize(list(df.itertuples(index=False, name=None)), 3)
    frame = spark.createDataFrame(rows, spark.createDataFrame(df.iloc[:5]).schema)
    assert frame.rdd.glom().map(len).collect() == [len(c) for c in chunks]
    assert_poisson_intervals_on_partitions(df, chunks, frame)
