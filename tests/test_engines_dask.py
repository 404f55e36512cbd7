"""aisre.drift on Dask DataFrames (a real dask.distributed LocalCluster): the one-machine verdicts and numbers."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import aisre  # noqa: E402
from aisre.errors import MissingDependencyError  # noqa: E402
from aisre.monitor.engines.common import engine_for  # noqa: E402
from tests.engine_helpers import (
    DRIFTED,
    assert_performance_on_frame,
    assert_poisson_intervals_on_partitions,
    assert_same_as_one_machine,
    assert_same_fairness,
    assert_same_performance,
    chunks_of,
    fairness_frame,
    frames,
    performance_frame,
    write_dataset,
)  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    return frames()


def test_auto_drift_on_dask_equals_one_machine(client, data):
    ref, cur = data
    exact = aisre.drift(ref, cur)
    got = aisre.drift(dd.from_pandas(ref, npartitions=3), dd.from_pandas(cur, npartitions=4))
    assert_same_as_one_machine(exact, got)
    assert set(got.drifted_columns) == set(DRIFTED)
    assert got.columns["cat_same_1"].details["engine"] == "dask/dask"


def test_histogram_methods_on_continuous_columns_use_the_exact_reference_deciles(client, data):
    ref, cur = data
    for method in ("psi", "hellinger"):
        exact = aisre.drift(ref, cur, method=method)
        got = aisre.drift(dd.from_pandas(ref, npartitions=3), dd.from_pandas(cur, npartitions=2), method=method)
        assert_same_as_one_machine(exact, got)
        assert got.columns["num_tail"].details["bin_edges"] == exact.columns["num_tail"].details["bin_edges"]


def test_ks_from_merged_profiles_is_within_its_bound_and_agrees(client, data):
    ref, cur = data
    numeric = [c for c in ref if ref[c].dtype.kind == "f"]
    exact = aisre.drift(ref, cur, method="ks", columns=numeric, correction="bh")
    got = aisre.drift(
        dd.from_pandas(ref, npartitions=2),
        dd.from_pandas(cur, npartitions=3),
        method="ks",
        columns=numeric,
        correction="bh",
    )
    assert_same_as_one_machine(exact, got)
    assert max(r.details["error_bound"] for r in got.columns.values()) < 0.005


def test_a_small_reference_gets_the_small_sample_tests_as_on_one_machine(client, data):
    ref, cur = data[0].iloc[:800], data[1].iloc[:1500]  # <= 1000 reference rows: ks, chisquare, z
    exact = aisre.drift(ref, cur)
    got = aisre.drift(dd.from_pandas(ref, npartitions=2), dd.from_pandas(cur, npartitions=3))
    assert {r.method for r in exact.columns.values()} >= {"ks", "chisquare"}
    assert_same_as_one_machine(exact, got)
    for name, r in exact.columns.items():  # chi-square p-values equal; KS p-values from scipy's exact routine
        if r.method == "ks":
            assert got.columns[name].p_value == pytest.approx(r.p_value, rel=0.2, abs=1e-6), name


def test_local_reference_against_a_dask_current_window(client, data):
    ref, cur = data
    assert_same_as_one_machine(aisre.drift(ref, cur), aisre.drift(ref, dd.from_pandas(cur, npartitions=3)))


def test_profile_of_a_dask_frame_equals_the_one_process_profile(client, data):
    from aisre.monitor.engines import profile_of

    ref, cur = data
    reference = aisre.Reference.fit(ref)
    want = reference.profile_of(cur)
    got = profile_of(reference, dd.from_pandas(cur, npartitions=4))
    assert got.rows == want.rows == len(cur)
    for name, p in want.columns.items():
        q = got.columns[name]
        assert q.counts.tolist() == p.counts.tolist(), name
        assert q.missing == p.missing, name
        if p.kind == "numeric":
            assert (q.n, q.infinite, q.min, q.max) == (p.n, p.infinite, p.min, p.max), name
            assert q.mean == pytest.approx(p.mean, rel=1e-12) and q.m2 == pytest.approx(p.m2, rel=1e-12), name


def test_fairness_of_a_dask_frame_equals_the_one_process_report():
    from aisre.monitor.engines import fairness

    df = fairness_frame()
    frame = dd.from_pandas(df, npartitions=3)
    assert_same_fairness(aisre.fairness(df["label"], df["pred"], df["sex"]), fairness(frame, "pred", "sex", "label"))
    both = df[["sex", "age"]]
    assert_same_fairness(
        aisre.fairness(df["label"], df["pred"], both), fairness(frame, "pred", ["sex", "age"], "label")
    )
    assert_same_fairness(aisre.fairness(None, df["pred"], df["sex"]), fairness(frame, "pred", "sex"))


def test_options_needing_raw_values_or_reference_chunks_are_refused_by_name(client, data):
    ref, cur = data
    frame = dd.from_pandas(ref, npartitions=2)
    with pytest.raises(aisre.InvalidParameterError, match="reference chunks"):
        aisre.drift(frame, cur, threshold="std")
    with pytest.raises(aisre.InvalidParameterError, match="compat"):
        aisre.drift(frame, cur, compat="evidently")


def test_a_dask_frame_without_dask_installed_names_the_extra(data, monkeypatch):
    frame = dd.from_pandas(data[0], npartitions=2)
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)  # import dask.dataframe now fails
    with pytest.raises(MissingDependencyError, match=r"aisre\[dask\]"):
        engine_for(frame)


def test_monitor_check_without_the_engine_installed_names_the_extra(data, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aisre.cli.main import app

    data[0].to_parquet(tmp_path / "ref.parquet")
    write_dataset(tmp_path / "ds", data[1].iloc[:100], "churn", ["2026-12-01"])
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    args = ["monitor", "check", "--engine", "dask", "--dataset", str(tmp_path / "ds"), "-m", "churn"]
    result = CliRunner().invoke(app, [*args, "-r", str(tmp_path / "ref.parquet")])
    assert result.exit_code == 2
    assert "aisre[dask]" in result.output and "Traceback" not in result.output


def test_monitor_check_over_an_exported_dataset_on_dask(client, data, tmp_path):
    from typer.testing import CliRunner

    from aisre.cli.main import app

    ref, cur = data
    ref.to_parquet(tmp_path / "ref.parquet")
    write_dataset(tmp_path / "ds", cur, "churn", ["2026-12-01", "2026-12-02"])
    args = ["monitor", "check", "--engine", "dask", "--dataset", str(tmp_path / "ds"), "-m", "churn"]
    result = CliRunner().invoke(app, [*args, "-r", str(tmp_path / "ref.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {c for c, r in report["columns"].items() if r["drift"]} == set(DRIFTED)
    other = CliRunner().invoke(app, [*args[:-1], "nobody", "-r", str(tmp_path / "ref.parquet")])
    assert other.exit_code == 3 and "no data" in other.output
    missing = CliRunner().invoke(
        app, [*args[:5], str(tmp_path / "absent"), *args[6:], "-r", str(tmp_path / "ref.parquet")]
    )
    assert missing.exit_code == 2 and "no such directory" in missing.output
    no_engine = CliRunner().invoke(app, [*args[:2], *args[4:], "-r", str(tmp_path / "ref.parquet")])
    assert no_engine.exit_code == 2 and "--engine" in no_engine.output


def test_monitor_check_reads_what_log_export_wrote(client, tmp_path):
    """The real pipeline: records in the store -> `export_dataset` (model/date Hive layout, in_<feature>
    columns) -> `aisre monitor check --engine dask --dataset`."""
    import numpy as np
    import pandas as pd
    from typer.testing import CliRunner

    from aisre.cli.main import app
    from aisre.records import InferenceRecord
    from aisre.store.dataset_export import export_dataset

    rng = np.random.default_rng(3)
    n = 3000
    reference = pd.DataFrame({"amount": rng.normal(0, 1, n), "plan": rng.choice(["free", "pro", "team"], n)})
    reference.to_parquet(tmp_path / "ref.parquet")
    amounts, plans = rng.normal(0.6, 1, n), rng.choice(["free", "pro", "team"], n)
    t0 = 1767225600.0  # 2026-01-01T00:00:00Z, three days of records
    records = [
        InferenceRecord(
            model="churn", version="1", inputs={"amount": float(a), "plan": str(p)}, prediction=0, ts=t0 + i * 80.0
        )
        for i, (a, p) in enumerate(zip(amounts, plans, strict=True))
    ]
    store = aisre.open_store(f"sqlite:///{tmp_path / 'log.db'}")
    store.write_batch(records)
    export_dataset(store, tmp_path / "ds", ("model", "date"))
    result = CliRunner().invoke(
        app,
        ["monitor", "check", "--engine", "dask", "--dataset", str(tmp_path / "ds"), "-m", "churn", "-v", "1"]
        + ["-r", str(tmp_path / "ref.parquet"), "--json"],
    )
    assert result.exit_code == 0, result.output
    columns = json.loads(result.stdout)["columns"]
    assert columns["amount"]["drift"] is True and columns["plan"]["drift"] is False
    assert columns["amount"]["n_current"] == n


def test_performance_of_a_dask_frame_equals_one_machine(client):
    df = performance_frame()
    assert_performance_on_frame(df, dd.from_pandas(df, npartitions=3))


def test_poisson_bootstrap_intervals_on_dask_match_the_same_partitions_anywhere_and_one_machine(client):
    """One partition per row range: the chunk reference (the Spark test checks it too: Spark = Dask), one machine."""
    df = performance_frame(3000, seed=5)
    chunks = chunks_of(df, 3)
    frame = dd.concat([dd.from_pandas(c, npartitions=1) for c in chunks])
    assert frame.npartitions == 3
    assert_poisson_intervals_on_partitions(df, chunks, frame)


def test_roc_auc_on_the_score_grid_stays_within_its_stated_bound(client, monkeypatch):
    from aisre.monitor.engines import performance as engine_performance

    df = performance_frame()
    exact = aisre.performance(df["label"], None, df["score"], metrics=["roc_auc"])["roc_auc"].value
    monkeypatch.setattr(engine_performance, "EXACT_SCORES", 100)  # the driver's merge then bins to the grid
    got = aisre.performance("label", y_score="score", metrics=["roc_auc"], data=dd.from_pandas(df, npartitions=3))
    auc = got["roc_auc"]
    assert "2^-20 grid" in auc.note
    bound = float(auc.note.rsplit("<= ", 1)[1])
    assert abs(auc.value - exact) <= bound * 1.001 + 1e-15
    assert auc.method == "delong" and auc.lower < auc.value < auc.upper


def test_fairness_and_performance_take_a_dask_frame_through_the_public_functions(client):
    df = fairness_frame()
    frame = dd.from_pandas(df, npartitions=3)
    assert_same_fairness(
        aisre.fairness(df["label"], df["pred"], df["sex"]), aisre.fairness("label", "pred", "sex", data=frame)
    )
    assert_same_fairness(
        aisre.fairness(df["label"], df["pred"], df[["sex", "age"]]),
        aisre.fairness(y_true="label", y_pred="pred", sensitive=["sex", "age"], data=frame),
    )
    with pytest.raises(aisre.InvalidParameterError, match=r"sensitive: .*'gender'.*it has: \['sex', 'age'"):
        aisre.fairness("label", "pred", "gender", data=frame)
    with pytest.raises(aisre.InvalidParameterError, match=r"y_score: .*'proba'.*it has"):
        aisre.performance("label", "pred", "proba", data=frame)
    with pytest.raises(aisre.InvalidParameterError, match="data="):
        aisre.performance(frame, "pred")


def test_an_empty_dask_frame_gives_the_one_machine_undefined_report(client):
    df = performance_frame().iloc[:0]
    got = aisre.performance("label", "pred", "score", data=dd.from_pandas(df, npartitions=2))
    assert_same_performance(aisre.performance(df["label"], df["pred"], df["score"]), got)
    assert got.n == 0 and got["roc_auc"].note == "no rows with both a label and a score"
