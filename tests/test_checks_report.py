"""Drift on a store filled by the SDK, the HTML report, and the `aisre drift` / `aisre monitor` CLI."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aisre
from aisre.monitor.drift import drift
from aisre.monitor.jobs.checks import check_window, output_columns
from aisre.monitor.jobs.signals import publish
from aisre.monitor.report.html import drift_report_html
from aisre.monitor.tabular.frame import DataError

from .conftest import PYTHON


def _frame(n: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 1, n),
            "age": rng.normal(40, 10, n),
            "country": rng.choice(["FR", "DE", "ES"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
        }
    )


@pytest.fixture
def filled(tmp_path: Path):
    """Two hours of traffic recorded through the SDK: the second hour's amounts drift."""
    url = f"sqlite:///{tmp_path / 'aisre.db'}"
    start = time.time() - 7200
    with aisre.Monitor("fraud", "v1", store=url) as m:
        for hour, shift in ((0, 0.0), (1, 0.8)):
            frame = _frame(1500, shift, seed=hour + 1)
            for i, row in enumerate(frame.to_dict("records")):
                p1 = float(row["amount"] > 40)
                m.record(row, int(p1), scores={"0": 1 - p1, "1": p1}, latency_s=0.001, ts=start + hour * 3600 + i)
    return url, start


def test_a_stored_window_drifts_and_becomes_signals(filled):
    url, start = filled
    store = aisre.open_store(url)
    reference = _frame(5000, seed=9)
    quiet = check_window(store, reference, "fraud", "v1", start, start + 3600)
    loud = check_window(
        store,
        reference,
        "fraud",
        "v1",
        start + 3600,
        start + 7200,
        reference_outputs={"prediction": (reference["amount"] > 40).astype(int)},
    )
    assert quiet.rows == loud.rows == 1500
    assert not quiet.data.dataset_drift and loud.data.dataset_drift
    scores = {s.labels["feature"]: s for s in loud.signals if s.name == "data_drift_score"}
    assert scores["amount"].breached and not scores["age"].breached
    assert scores["amount"].window_start == start + 3600
    assert any(s.name == "prediction_drift_score" and s.breached for s in loud.signals)
    assert {s.name for s in loud.signals} >= {"window_rows", "data_drift_share", "dataset_drift"}
    publish(loud.signals, store=store)
    assert len(store.signals(model="fraud", name="data_drift_score")) == 3


def test_window_without_matching_columns_is_a_clear_error(filled):
    url, start = filled
    with pytest.raises(DataError, match="no reference column appears in the stored inputs"):
        check_window(aisre.open_store(url), {"other": [1.0, 2.0]}, "fraud", "v1")


def test_output_columns_from_records():
    recs = [
        aisre.InferenceRecord(model="m", version="v", prediction=1, scores={"0": 0.2, "1": 0.8}),
        aisre.InferenceRecord(model="m", version="v", prediction=0, output_text="hello", output_tokens=2),
    ]
    cols = output_columns(recs)
    assert cols["score:1"].tolist()[0] == 0.8 and np.isnan(cols["score:1"][1])
    assert cols["prediction"].tolist() == [1.0, 0.0] and cols["response_length"][1] == 5.0


def test_report_stays_small_for_100_columns_whatever_the_rows():
    rng = np.random.default_rng(0)
    n = 20_000
    ref = {f"x{i}": rng.normal(size=n) for i in range(90)} | {
        f"c{i}": rng.choice(["a", "b", "c", "d"], n).astype(object) for i in range(10)
    }
    cur = {k: (v + 0.5 if k < "x3" else v) if v.dtype != object else v for k, v in ref.items()}
    result = drift(ref, cur)
    page = drift_report_html(result, ref, cur, title="100 columns")
    assert len(page.encode()) < 2_000_000
    assert page.count("<svg") == 100 and "Dataset drift" in page or "No dataset drift" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "aisre", *args], capture_output=True, text=True, timeout=120)


def test_drift_cli_json_shape_and_html(tmp_path: Path):
    _frame(3000, seed=1).to_parquet(tmp_path / "ref.parquet")
    _frame(3000, shift=0.8, seed=2).to_csv(tmp_path / "cur.csv", index=False)
    out = cli(
        "drift",
        str(tmp_path / "ref.parquet"),
        str(tmp_path / "cur.csv"),
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc) >= {"columns", "share_drifted", "dataset_drift"}
    for col in doc["columns"].values():
        assert set(col) >= {"method", "statistic", "p_value", "threshold", "drift"}
    assert doc["columns"]["amount"]["drift"] is True and doc["columns"]["age"]["drift"] is False
    assert (tmp_path / "r.html").stat().st_size < 200_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.csv", "cur.csv"], "REF: no such file nope.csv"),
        (["ref.parquet", "notes.txt2"], "CUR: no such file"),
        (["ref.parquet", "other.csv"], "CUR: columns missing compared with REF: ['country']"),
        (["ref.parquet", "other.csv", "--columns", "amount,zzz"], "columns not found: ['zzz']"),
    ],
)
def test_drift_cli_errors_name_the_input(tmp_path: Path, args: list[str], message: str):
    _frame(100).to_parquet(tmp_path / "ref.parquet")
    _frame(100).drop(columns=["country"]).to_csv(tmp_path / "other.csv", index=False)
    out = subprocess.run([PYTHON, "-m", "aisre", "drift", *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_monitor_cli_reference_and_check(filled, tmp_path: Path):
    url, start = filled
    _frame(5000, seed=9).to_parquet(tmp_path / "ref.parquet")
    made = cli("monitor", "reference", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "ref.json"))
    assert made.returncode == 0, made.stderr
    out = cli(
        "monitor",
        "check",
        "-m",
        "fraud",
        "-v",
        "v1",
        "-r",
        str(tmp_path / "ref.json"),
        "--since",
        "1h",
        "--store",
        url,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    signals = json.loads(out.stdout)
    amount = next(s for s in signals if s["labels"].get("feature") == "amount")
    assert amount["breached"] is True
    assert len(aisre.open_store(url).signals(model="fraud")) == len(signals)
