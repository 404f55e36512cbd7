"""`aisre drift --threshold std`: NannyML's reference-chunk rule from the command line, and its bad options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aisre.cli.main import app
from aisre.monitor.drift import StdThreshold, drift


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=20_000), "c": rng.choice(list("abc"), 20_000)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 2_000), "c": rng.choice(list("abc"), 2_000, p=[0.5, 0.3, 0.2])})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.csv", tmp_path / "cur.csv"


def test_threshold_std_gives_the_library_numbers(tables, tmp_path: Path):
    ref, cur = tables
    out = tmp_path / "d.json"
    args = [str(ref), str(cur), "--method", "jensenshannon", "--threshold", "std", "--chunk-size", "2000"]
    result = CliRunner().invoke(app, ["drift", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())["columns"]
    expected = drift(
        pd.read_csv(ref), pd.read_csv(cur), method="jensenshannon", threshold=StdThreshold(k=3), chunk_size=2000
    )
    for name, column in expected.columns.items():
        assert got[name]["drift"] == column.drift
        assert got[name]["statistic"] == pytest.approx(column.statistic, rel=1e-12)
        assert got[name]["threshold"] == pytest.approx(column.threshold, rel=1e-12)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "nope"], "--threshold: expected a number or 'std', got 'nope'"),
        (["--threshold", "nan"], "--threshold: expected a finite number"),
        (["--chunk-size", "100"], "--chunk-size: only with --threshold std"),
        (["--threshold", "std", "--chunk-size", "0"], "--chunk-size: expected a number of rows >= 1"),
        (["--threshold", "std", "--std-k", "-1"], "--std-k: expected a finite number >= 0, got -1.0"),
        (["--threshold", "std", "--method", "ks"], "decides by p-value"),
    ],
)
def test_bad_threshold_options_exit_2_naming_them(tables, extra: list[str], message: str):
    ref, cur = tables
    result = CliRunner().invoke(app, ["drift", str(ref), str(cur), *extra])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in output and message in output, output
