"""Freshness marks written by the SDK, the CLI and the gateway; fairness/freshness/pos_label specs checked at load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import aisre
from aisre.clock import ManualClock
from aisre.config import parse_config
from aisre.errors import ConfigError
from aisre.slo.marks import MODEL_TRAINED_AT, REFERENCE_REFRESHED_AT
from aisre.store import SQLiteStore
from tests.gateway_helpers import RunningGateway, gateway_config
from tests.slo_helpers import HOUR, T0


def aisre_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aisre", *args], capture_output=True, text=True, timeout=120)


def marks(db: Path, name: str = MODEL_TRAINED_AT) -> list[tuple[float, str, str, float]]:
    return [(ts, s.model, s.version, s.value) for ts, s in SQLiteStore(db).signals(name=name)]


def test_monitor_marks_training_now_or_at_a_given_time_for_its_version_or_all(db_path: Path) -> None:
    clock = ManualClock(T0 + HOUR)
    with aisre.Monitor("fraud", "v2", store=f"sqlite:///{db_path}", clock=clock) as monitor:
        monitor.mark_trained()
        monitor.mark_trained(at=T0, all_versions=True)
        monitor.mark_reference_refreshed(at=T0 - HOUR)
    assert marks(db_path) == [(T0 + HOUR, "fraud", "v2", T0 + HOUR), (T0 + HOUR, "fraud", "*", T0)]
    assert marks(db_path, REFERENCE_REFRESHED_AT) == [(T0 + HOUR, "fraud", "v2", T0 - HOUR)]


def test_cli_mark_writes_the_mark_in_the_configs_store(tmp_path: Path) -> None:
    db = tmp_path / "aisre.db"
    config = tmp_path / "aisre.yaml"
    config.write_text(f"store: sqlite:///{db}\n")
    done = aisre_cli("slo", "mark", "fraud", "--trained-at", "2026-01-01T00:00", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "model_trained_at = 2026-01-01T00:00:00Z" in done.stdout
    done = aisre_cli(
        "slo",
        "mark",
        "fraud",
        "--version",
        "v2",
        "--reference-refreshed-at",
        str(T0 + HOUR),
        "--store",
        f"sqlite:///{db}",
    )
    assert done.returncode == 0, done.stderr
    assert [m[1:] for m in marks(db)] == [("fraud", "*", T0)]
    assert [m[1:] for m in marks(db, REFERENCE_REFRESHED_AT)] == [("fraud", "v2", T0 + HOUR)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --trained-at TIME or --reference-refreshed-at TIME"),
        (["--trained-at", "now", "--reference-refreshed-at", "now"], "give exactly one of"),
        (["--trained-at", "last tuesday"], "--trained-at: expected a duration like 15m"),
        (["--reference-refreshed-at", "-5"], "--reference-refreshed-at: expected a time at or after 1970"),
        (["--trained-at", "now", "--store", "mysql://x"], "store URL: expected 'sqlite:///PATH'"),
    ],
)
def test_cli_mark_refuses_bad_input_naming_the_option(tmp_path: Path, args: list[str], message: str) -> None:
    store = [] if "--store" in args else ["--store", f"sqlite:///{tmp_path / 'a.db'}"]
    done = aisre_cli("slo", "mark", "fraud", *args, *store)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_the_gateway_marks_in_process_models_at_start_up(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a", "b"):
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), models / f"{name}.joblib")
    os.utime(models / "a.joblib", (T0 - HOUR, T0 - HOUR))  # the artifact's mtime stands for its training time
    cfg = gateway_config(
        tmp_path,
        {
            "iris": {
                "protocol": "oip",
                "versions": {
                    "v1": {"sklearn": str(models / "a.joblib")},
                    "v2": {"sklearn": str(models / "b.joblib"), "trained_at": "2026-01-01T00:00:00Z"},
                },
                "route": {"v1": 100},
            }
        },
    )
    with RunningGateway(cfg):
        pass
    got = {version: value for _, _, version, value in marks(tmp_path / "aisre.db")}
    assert got == {"v1": T0 - HOUR, "v2": T0}


@pytest.mark.parametrize(
    ("sli", "path", "message"),
    [
        (
            "{kind: fairness, metric: dp, sensitive: sex, max: 0.1}",
            "slos.0.sli.metric",
            "demographic_parity_difference",
        ),
        ("{kind: fairness, metric: demographic_parity_ratio, sensitive: sex}", "slos.0.sli", "needs min and/or max"),
        ("{kind: fairness, metric: demographic_parity_ratio, min: 0.8}", "slos.0.sli", "needs sensitive"),
        ("{kind: latency, threshold_s: 0.2, pos_label: fraud}", "slos.0.sli.pos_label", "not to a latency SLI"),
        ("{kind: quality, metric: r2, min: 0.8, pos_label: 1}", "slos.0.sli.pos_label", "not to a quality SLI of r2"),
        ("{kind: freshness, max_age: 1d, source: model}", "slos.0.sli.source", "'trained', 'reference' or 'any'"),
        ("{kind: drift, source: trained}", "slos.0.sli.source", "freshness SLIs only"),
        ("{kind: freshness, max_age: soon}", "slos.0.sli.max_age", "5m, 1h"),
        ("{kind: freshness, max_age: 1d, where: {tags.x: y}}", "slos.0.sli", "where does not apply"),
    ],
)
def test_bad_fairness_freshness_and_pos_label_specs_are_refused_at_their_key_path(
    sli: str, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(f"slos:\n  - {{name: a, model: fraud, objective: 0.9, sli: {sli}}}\n")
    assert f"{path}:" in str(err.value) and message in str(err.value), str(err.value)


def test_check_config_names_the_key_and_the_accepted_fairness_metrics(tmp_path: Path) -> None:
    config = tmp_path / "aisre.yaml"
    config.write_text(
        "slos:\n  - {name: fair, model: loans, objective: 0.99, sli: {kind: fairness, metric: parity, sensitive: sex,"
        " max: 0.1}}\n  - {name: ok, model: loans, objective: 0.99, sli: {kind: quality, metric: recall, min: 0.9,"
        " pos_label: fraud}}\n"
    )
    done = aisre_cli("check-config", str(config))
    assert done.returncode == 2
    assert "slos.0.sli.metric" in done.stderr and "equalized_odds_difference" in done.stderr, done.stderr
    assert "slos.1" not in done.stderr  # a string positive label is fine
