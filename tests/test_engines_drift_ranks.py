"""Anderson-Darling, Cramer-von Mises and value-by-value chi-square / Z on Spark and Dask frames.

A real local[2] Spark and a real dask.distributed LocalCluster, each started once for the module;
every result is compared with the one-machine `aisre.drift` on the same rows.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

import aisre
from aisre.monitor.engines import ranks
from aisre.monitor.engines.partition import EXACT_VALUE_LIMIT, VALUE_LIMIT, ColumnPlan, summarise
from aisre.monitor.tabular.frame import to_columns
from tests.engine_helpers import frames, local_spark

drift_engine = importlib.import_module("aisre.monitor.engines.drift")

#: Numeric columns of engine_helpers.frames(): continuous (NaN, +-inf sprinkled in), long tail, few-valued.
RANK_COLUMNS = ["num_shift_0", "num_scale", "num_tail", "num_same_0", "num_same_1", "num_same_4", "few_shift"]
#: Grid results (values in one bin tied): |statistic error| <= absolute + relative * |exact|, |p error| <= p_abs.
#: Not a proven bound: the largest errors measured (docs/statistics-distributed.md), with some room.
GRID_ENVELOPE = {
    "anderson": {"absolute": 0.04, "relative": 0.03, "p_abs": 0.005},
    "cramervonmises": {"absolute": 0.002, "relative": 0.002, "p_abs": 0.003},
}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """engine_helpers.frames() plus numeric columns with hundreds of distinct values."""
    ref, cur = frames()
    rng = np.random.default_rng(12)
    for df, drifted in ((ref, False), (cur, True)):
        df["ints"] = rng.integers(0, 900, len(df)).astype(float)  # ~900 distinct, no drift
        df["cents"] = np.round(rng.normal(0.2 if drifted else 0.0, 1.0, len(df)), 2)  # ~600 distinct, drifted
        df["counts"] = rng.poisson(40 if drifted else 30, len(df)).astype(float)  # current values unseen before
    return ref, cur


def assert_exactly_one_machine(want: aisre.monitor.DatasetDrift, got: aisre.monitor.DatasetDrift) -> None:
    assert list(got.columns) == list(want.columns)
    for name, w in want.columns.items():
        g = got.columns[name]
        assert (g.method, g.drift) == (w.method, w.drift), name
        for key in ("n_reference", "n_current", "missing_reference", "missing_current"):
            assert g.details[key] == w.details[key], (name, key)
        assert g.statistic == pytest.approx(w.statistic, rel=1e-12, abs=1e-12), name
        assert g.p_value == pytest.approx(w.p_value, rel=1e-12, abs=1e-12), name
        assert g.details.get("p_value_capped") == w.details.get("p_value_capped"), name


def grid_cases(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several shapes, each drifted clearly or not at all (no verdict near the threshold)."""
    rng = np.random.default_rng(seed)

    def table(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "normal_shift": rng.normal(shift, 1.0, rows),
                "normal_same": rng.normal(0.0, 1.0, rows),
                "lognormal_shift": rng.lognormal(shift, 1.0, rows),
                "student_t2_same": rng.standard_t(2, rows),
                "bimodal_same": np.where(rng.random(rows) < 0.3, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows)),
                "uniform_shift": rng.random(rows) + shift / 2,
                "exponential_same": rng.exponential(1.0, rows),
            }
        )

    return table(0.0), table(0.25)


def assert_grid_close(want: aisre.monitor.DatasetDrift, got: aisre.monitor.DatasetDrift) -> None:
    """Verdicts equal; statistic and p-value within the measured envelope; the note says what was done."""
    for name, w in want.columns.items():
        g = got.columns[name]
        envelope = GRID_ENVELOPE[w.method]
        assert (g.method, g.drift) == (w.method, w.drift), name
        assert g.details["exact_from"].startswith("grid bins"), name
        assert "without a proven error bound" in " ".join(g.details["notes"]), name
        allowed = envelope["absolute"] + envelope["relative"] * abs(w.statistic)
        assert abs(g.statistic - w.statistic) <= allowed, (name, g.statistic, w.statistic)
        assert abs(g.p_value - w.p_value) <= envelope["p_abs"], (name, g.p_value, w.p_value)
    assert got.drifted_columns == ["normal_shift", "lognormal_shift", "uniform_shift"]


# --- Spark -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java (make test installs openjdk-17-jre-headless)")
    with local_spark("aisre-tests-ranks") as session:
        yield session


@pytest.fixture(scope="module")
def sdf(spark, data):
    """Both windows as cached Spark frames of 3 and 2 partitions (every pass then reads the cache)."""
    ref, cur = (spark.createDataFrame(df).repartition(n).cache() for df, n in zip(data, (3, 2), strict=True))
    assert ref.count() == len(data[0]) and cur.count() == len(data[1])
    yield ref, cur
    ref.unpersist()
    cur.unpersist()


def test_anderson_and_cramervonmises_on_spark_equal_one_machine_to_1e12(sdf, data):
    ref, cur = data
    sref, scur = sdf
    for method in ("anderson", "cramervonmises"):
        want = aisre.drift(ref, cur, method=method, columns=RANK_COLUMNS)
        got = aisre.drift(sref, scur, method=method, columns=RANK_COLUMNS)
        assert_exactly_one_machine(want, got)
        assert {r.details["exact_from"] for r in got.columns.values()} == {"value counts"}
        assert set(got.drifted_columns) == {"num_shift_0", "num_scale", "num_tail", "few_shift"}


def test_chisquare_and_z_on_many_valued_numeric_columns_on_spark_equal_one_machine(sdf, data):
    ref, cur = data
    sref, scur = sdf
    columns = ["ints", "cents", "counts", "num_shift_0"]
    for method in ("chisquare", "z"):
        want = aisre.drift(ref, cur, method=method, columns=columns)
        got = aisre.drift(sref, scur, method=method, columns=columns)
        assert_exactly_one_machine(want, got)
    assert got.columns["ints"].details["categories"] > VALUE_LIMIT


def test_rank_tests_past_the_cap_on_spark_come_from_the_grid_with_the_one_machine_verdicts(spark, monkeypatch):
    ref, cur = grid_cases(4000, seed=5)
    monkeypatch.setattr(drift_engine, "EXACT_VALUE_LIMIT", 100)  # the plan carries the cap to the executors
    sref, scur = spark.createDataFrame(ref).repartition(3), spark.createDataFrame(cur).repartition(2)
    for method in ("anderson", "cramervonmises"):
        assert_grid_close(aisre.drift(ref, cur, method=method), aisre.drift(sref, scur, method=method))


def test_a_value_by_value_method_past_the_cap_on_spark_is_refused_naming_column_count_and_cap(sdf, monkeypatch):
    monkeypatch.setattr(drift_engine, "EXACT_VALUE_LIMIT", 100)
    sref, scur = sdf
    with pytest.raises(aisre.DataError) as caught:
        aisre.drift(sref, scur, method={"ints": "chisquare", "few_shift": "chisquare"}, columns=["few_shift", "ints"])
    message = str(caught.value)
    assert "column 'ints'" in message and "more than 100 distinct values" in message, message
    assert "at least" in message and "psi" in message and "ks" in message, message


# --- Dask --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("dask.dataframe")
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_rank_and_value_tests_on_dask_equal_one_machine_to_1e12(client, data):
    import dask.dataframe as dd

    ref, cur = data
    dref, dcur = dd.from_pandas(ref, npartitions=4), dd.from_pandas(cur, npartitions=3)
    for method in ("anderson", "cramervonmises"):
        assert_exactly_one_machine(
            aisre.drift(ref, cur, method=method, columns=RANK_COLUMNS),
            aisre.drift(dref, dcur, method=method, columns=RANK_COLUMNS),
        )
    columns = ["ints", "cents", "counts"]
    mixed = {"ints": "z", "cents": "chisquare", "counts": "chisquare"}
    want = aisre.drift(ref, cur, method=mixed, columns=columns)
    assert_exactly_one_machine(want, aisre.drift(dref, dcur, method=mixed, columns=columns))
    assert_exactly_one_machine(want, aisre.drift(ref, dcur, method=mixed, columns=columns))  # a local reference


def test_rank_tests_past_the_cap_on_dask_stay_within_the_measured_error(client, monkeypatch):
    import dask.dataframe as dd

    ref, cur = grid_cases(20_000, seed=9)
    monkeypatch.setattr(drift_engine, "EXACT_VALUE_LIMIT", 100)  # grid bins then hold ~10 values each
    dref, dcur = dd.from_pandas(ref, npartitions=3), dd.from_pandas(cur, npartitions=2)
    for method in ("anderson", "cramervonmises"):
        got = aisre.drift(dref, dcur, method=method)
        assert_grid_close(aisre.drift(ref, cur, method=method), got)
        assert all(r.details["grid_bins"] > 1000 for r in got.columns.values())


def test_the_real_cap_merges_partition_tables_and_refuses_or_falls_back_to_the_grid(client):
    """70,000 distinct values in 2 partitions: each partial keeps its table, the merge passes 65,536."""
    import dask.dataframe as dd

    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 70_000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 3_000)})
    dref, dcur = dd.from_pandas(ref, npartitions=2), dd.from_pandas(cur, npartitions=2)
    with pytest.raises(aisre.DataError) as caught:
        aisre.drift(dref, dcur, method="chisquare")
    message = str(caught.value)
    assert f"more than {EXACT_VALUE_LIMIT:,} distinct values (at least 70,000 seen)" in message, message
    assert "column 'x'" in message and "reference window" in message and "jensenshannon" in message, message
    want = aisre.drift(ref, cur, method="anderson")
    got = aisre.drift(dref, dcur, method="anderson")
    assert got.columns["x"].drift == want.columns["x"].drift
    assert "at least 70,000 seen" in " ".join(got.columns["x"].details["notes"])


def test_constant_and_too_small_windows_behave_as_on_one_machine(client):
    import dask.dataframe as dd

    ref = pd.DataFrame({"c": np.full(500, 3.0), "few": np.arange(500.0)})
    cur = pd.DataFrame({"c": np.full(400, 3.0), "few": np.r_[7.0, np.full(399, np.nan)]})
    dref, dcur = dd.from_pandas(ref, npartitions=2), dd.from_pandas(cur, npartitions=2)
    for method in ("anderson", "cramervonmises"):
        want = aisre.drift(ref[["c"]], cur[["c"]], method=method).columns["c"]
        got = aisre.drift(dref, dcur, method=method, columns=["c"]).columns["c"]
        assert (
            (got.statistic, got.p_value, got.drift) == (want.statistic, want.p_value, want.drift) == (0.0, 1.0, False)
        )
    with pytest.raises(
        aisre.DataError, match=r"column 'few' \(method 'cramervonmises'\): current has only 1 .*need at least 2"
    ):
        aisre.drift(ref, cur, method="cramervonmises", columns=["few"])
    with pytest.raises(
        aisre.DataError, match=r"column 'few' \(method 'cramervonmises'\): current has only 1 .*need at least 2"
    ):
        aisre.drift(dref, dcur, method="cramervonmises", columns=["few"])


# --- what every method pays -------------------------------------------------------------------------------


def test_only_methods_that_need_the_exact_table_collect_it():
    """auto, histogram and grid methods keep value counts only while few (64); the others up to the cap."""
    batch = to_columns(pd.DataFrame({"x": np.random.default_rng(0).normal(size=5000)}))
    for method in ("auto", "psi", "jensenshannon", "hellinger", "ks", "wasserstein"):
        plan = ColumnPlan(sketch=True, value_limit=drift_engine._value_limit(method))
        part = summarise(batch, {"x": plan})["columns"]["x"]
        assert part.values is None and part.limit == VALUE_LIMIT, method
    for method in ("chisquare", "z", "linfinity", "anderson", "cramervonmises"):
        plan = ColumnPlan(sketch=True, value_limit=drift_engine._value_limit(method))
        part = summarise(batch, {"x": plan})["columns"]["x"]
        assert part.values is not None and len(part.values) == part.distinct == 5000, method


def test_rank_statistics_from_counts_equal_scipy_for_ties_and_large_samples(monkeypatch):
    """The formulas alone, against scipy on raw samples (the harmonic sums in chunks too)."""
    import warnings

    from scipy import stats

    rng = np.random.default_rng(4)
    x, y = np.round(rng.normal(0, 1, 30_000), 1), np.round(rng.normal(0.02, 1.1, 25_000), 1)
    labels = np.unique(np.concatenate([x, y]))
    a = np.searchsorted(np.sort(x), labels, "right") - np.searchsorted(np.sort(x), labels, "left")
    b = np.searchsorted(np.sort(y), labels, "right") - np.searchsorted(np.sort(y), labels, "left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = stats.anderson_ksamp([x, y])
    assert ranks.anderson(a, b) == pytest.approx((want.statistic, want.pvalue), rel=1e-12)
    cvm = stats.cramervonmises_2samp(x, y)
    assert ranks.cramervonmises(a, b) == pytest.approx((cvm.statistic, cvm.pvalue), rel=1e-12)
    whole = ranks._harmonics.__wrapped__(55_000)  # past the cache: one numpy cumsum, as scipy
    monkeypatch.setattr(ranks, "_CHUNK", 4096)
    chunked = ranks._harmonics.__wrapped__(55_000)  # 14 chunks, the running sum carried
    assert chunked == pytest.approx(whole, rel=1e-13)


def _shapes(rng: np.random.Generator, rows: int, s: float) -> pd.DataFrame:
    mix = np.where(rng.random(rows) < 0.3 + s / 5, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows))
    return pd.DataFrame(
        {
            "normal": rng.normal(s, 1.0, rows),
            "lognormal": rng.lognormal(s, 1.0, rows),
            "student_t2": rng.standard_t(2, rows) + s,
            "bimodal": mix,
            "uniform": rng.random(rows) + s / 2,
            "exponential": rng.exponential(1.0 + s, rows),
            "rounded": np.round(rng.normal(s, 1, rows), 3),
        }
    )


def measure_grid_error(rows: int, seeds: int, cap: int) -> dict[str, dict[str, float]]:
    """The grid path's largest errors against one machine (docs/statistics-distributed.md), on a local table
    (one partition: the grid and the formulas are those of a Spark/Dask run)."""
    import warnings

    warnings.simplefilter("ignore")
    drift_engine.EXACT_VALUE_LIMIT = cap
    worst = {m: {"abs_below_1": 0.0, "rel_from_1": 0.0, "p_abs": 0.0, "flips": 0, "grid": 0} for m in GRID_ENVELOPE}
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        shift = [0.0, 0.02, 0.05, 0.1][seed % 4] * (4000 / rows) ** 0.5

        ref, cur = _shapes(rng, rows, 0.0), _shapes(rng, rows, shift)
        for method, w in worst.items():
            want, got = aisre.drift(ref, cur, method=method), drift_engine.drift(ref, cur, method=method)
            for name, exact in want.columns.items():
                g = got.columns[name]
                if not g.details["exact_from"].startswith("grid"):
                    continue
                err = abs(g.statistic - exact.statistic)
                key = "abs_below_1" if abs(exact.statistic) < 1 else "rel_from_1"
                w[key] = max(w[key], err if key == "abs_below_1" else err / abs(exact.statistic))
                w["p_abs"] = max(w["p_abs"], abs(g.p_value - exact.p_value))
                w["flips"] += g.drift != exact.drift
                w["grid"] += 1
    return worst


if __name__ == "__main__":  # PYTHONPATH=. python -m tests.test_engines_drift_ranks ROWS SEEDS CAP
    print(measure_grid_error(*(int(a) for a in sys.argv[1:4])))
