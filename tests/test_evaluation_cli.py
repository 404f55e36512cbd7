"""`aisre eval` and the `evaluation:` config: exit 0 pass, 1 fail (failing checks named), 2 bad input in one line;
JSON and self-contained HTML reports; config mistakes refused by `aisre check-config` at their key path."""

from __future__ import annotations

import json
import re
import shutil
import traceback
from pathlib import Path

import joblib
import pytest
import yaml
from typer.testing import CliRunner

from aisre.cli.main import app
from aisre.config import parse_config
from aisre.errors import ConfigError
from aisre.respond import latest_evaluation
from tests.evaluation_helpers import THRESHOLDS, Golden, make_golden, write_config


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    return make_golden(tmp_path_factory.mktemp("golden"))


@pytest.fixture
def config(tmp_path: Path, golden: Golden) -> Path:
    """aisre.yaml next to its golden data and models, with relative paths (resolved from the file's directory)."""
    for f in (golden.csv, golden.parquet, golden.good, golden.constant):
        shutil.copy(f, tmp_path / f.name)
    versions = {"good": {"sklearn": "good.joblib"}, "constant": {"sklearn": "constant.joblib"}}
    return write_config(tmp_path, versions, {"data": "golden.csv", **THRESHOLDS})


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"aisre {' '.join(args)} raised instead of answering:\n{trace}")
    return result


def test_a_passing_version_exits_0_and_is_stored(config: Path):
    result = run("eval", "cancer", "good", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output and "accuracy" in result.output
    stored = latest_evaluation(f"sqlite:///{config.parent / 'aisre.db'}", "cancer", "good")
    assert stored is not None and stored.passed


def test_a_failing_version_exits_1_naming_the_failing_checks(config: Path):
    result = run("eval", "cancer", "constant", "-c", str(config))
    assert result.exit_code == 1, result.output
    assert re.search(r"FAILED 3 of 4: accuracy, log_loss, roc_auc", result.output)


def test_json_to_stdout_is_the_whole_report(config: Path):
    result = run("eval", "cancer", "constant", "-c", str(config), "--json", "-", "--no-store")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False and doc["model"] == "cancer" and doc["version"] == "constant"
    accuracy = next(c for c in doc["checks"] if c["name"] == "accuracy")
    assert set(accuracy) >= {"value", "lower", "upper", "threshold", "passed"} and accuracy["passed"] is False
    assert latest_evaluation(f"sqlite:///{config.parent / 'aisre.db'}", "cancer", "constant") is None  # --no-store


def test_the_html_report_is_self_contained_and_shows_the_verdict(config: Path, tmp_path: Path):
    out = tmp_path / "report.html"
    result = run(
        "eval",
        "cancer",
        "constant",
        "-c",
        str(config),
        "--html",
        str(out),
        "--data",
        str(config.parent / "golden.parquet"),
    )
    assert result.exit_code == 1
    page = out.read_text()
    assert "FAIL" in page and "accuracy" in page and "<script" not in page
    assert not re.search(r"(src|href)=['\"]?https?:", page)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "nope"], r"label: column 'nope' is not in .*golden.csv; columns found: .*diagnosis"),
        (["--data", "missing.csv"], r"--data: no such file missing.csv"),
        (["--data", "junk.parquet"], r"cannot read .*junk.parquet"),
        (["--data", "aisre.yaml"], r"expected a .csv, .tsv or .parquet file"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_problem(config: Path, args: list[str], message: str, monkeypatch):
    monkeypatch.chdir(config.parent)
    (config.parent / "junk.parquet").write_bytes(b"PAR1 but not really")
    result = run("eval", "cancer", "good", "-c", str(config), *args)
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [
        ("other", "good", "no model 'other' in models: (cancer)"),
        ("cancer", "v9", "has no version 'v9' (constant, good)"),
    ],
)
def test_an_unknown_model_or_version_exits_2(config: Path, model: str, version: str, message: str):
    result = run("eval", model, version, "-c", str(config))
    assert result.exit_code == 2 and message in result.output


def test_check_config_refuses_bad_evaluation_entries_at_their_key_path(tmp_path: Path, golden: Golden):
    doc = {
        "models": {"cancer": {"protocol": "oip", "versions": {"good": {"sklearn": str(golden.good)}}}},
        "evaluation": {
            "cancer": {
                "metrics": {"acuracy": {"min": 0.9}, "recall": {"max": 0.5}},
                "fairness": [{"metric": "disparate_impact_ratio", "sensitive": "site", "max": 0.8}],
                "use": "lower_bound",
            }
        },
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(doc))
    text = str(caught.value)
    assert "evaluation.cancer.metrics.acuracy: unknown metric 'acuracy'" in text
    assert "evaluation.cancer.metrics.recall.max: higher recall is better: give min" in text
    assert "evaluation.cancer.fairness.0: disparate_impact_ratio is a ratio (1 = parity): give min" in text
    assert "evaluation.cancer.use:" in text
    with pytest.raises(ConfigError, match=r"evaluation.fraud: no model 'fraud' in models: \(cancer\)"):
        parse_config(yaml.safe_dump({**doc, "evaluation": {"fraud": {}}}))


def test_check_config_names_a_missing_golden_file_and_a_missing_column(config: Path):
    doc = yaml.safe_load(config.read_text())
    doc["evaluation"]["cancer"]["label"] = "outcome"
    config.write_text(yaml.safe_dump(doc))
    result = run("check-config", str(config))
    assert result.exit_code == 2
    assert "evaluation.cancer.label: column 'outcome' is not in" in result.output
    doc["evaluation"]["cancer"]["data"] = "gone.csv"
    config.write_text(yaml.safe_dump(doc))
    result = run("check-config", str(config))
    assert result.exit_code == 2 and "evaluation.cancer.data: no such file" in result.output


def test_a_model_that_crashes_exits_2_naming_the_model_file(config: Path):
    from tests.evaluation_helpers import BrokenModel

    joblib.dump(BrokenModel(), config.parent / "broken.joblib")
    doc = yaml.safe_load(config.read_text())
    doc["models"]["cancer"]["versions"]["broken"] = {"sklearn": "broken.joblib"}
    config.write_text(yaml.safe_dump(doc))
    result = run("eval", "cancer", "broken", "-c", str(config))
    assert result.exit_code == 2, result.output
    assert "broken.joblib failed: RuntimeError: weights are corrupt" in result.output
    assert "Traceback" not in result.output
