"""`aisre slo status | validate | history`, run as a real process on a real SQLite store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.config import load_config
from aisre.slo.evaluate import evaluate
from aisre.store import SQLiteStore

from .slo_helpers import SLOS_YAML, fraud_traffic
from .test_cli import aisre_cli


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


@pytest.fixture
def degraded(tmp_path: Path) -> tuple[Path, float]:
    """A config with availability, latency and correctness SLOs over traffic whose last hour is all wrong."""
    db = tmp_path / "aisre.db"
    end = fraud_traffic(db, hours_right=3, hours_wrong=1)
    config = tmp_path / "aisre.yaml"
    config.write_text(SLOS_YAML.format(db=db), encoding="utf-8")
    return config, end


def test_status_json_equals_the_evaluator(degraded: tuple[Path, float]) -> None:
    config, end = degraded
    result = aisre_cli("slo", "status", "-c", str(config), "--json", "--at", iso(end))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    cfg = load_config(str(config))
    expected = [
        r.to_dict() for r in evaluate(cfg.slos, SQLiteStore(cfg.store.url.removeprefix("sqlite:///")), ManualClock(end))
    ]
    assert printed == expected
    by_name = {r["slo"]: r for r in printed}
    assert by_name["fraud-correctness"]["alerts"]["page"] == "firing"
    assert by_name["fraud-availability"]["alerts"]["page"] == "inactive"


def test_status_table_shows_every_slo_with_burn_rates_and_alert_state(degraded: tuple[Path, float]) -> None:
    config, end = degraded
    result = aisre_cli("slo", "status", "-c", str(config), "--at", iso(end))
    assert result.returncode == 0, result.stderr
    for text in ("fraud-availability", "fraud-latency", "fraud-correctness", "burn 5m", "burn 1d", "firing"):
        assert text in result.stdout
    assert "75.0000%" in result.stdout  # the correctness SLI now
    assert "100.00x" in result.stdout  # its burn rate over 5m and 1h


def test_status_says_when_a_spent_budget_freezes_promotions(degraded: tuple[Path, float]) -> None:
    config, end = degraded
    text = config.read_text(encoding="utf-8").replace(
        "    sli: {kind: correctness}",
        "    sli: {kind: correctness}\n    policy: {freeze_promotions_when_exhausted: true}",
    )
    config.write_text(text, encoding="utf-8")
    result = aisre_cli("slo", "status", "-c", str(config), "--at", iso(end))
    assert result.returncode == 0, result.stderr
    assert "fraud-correctness: budget spent; its policy freezes promotions of fraud" in result.stdout
    assert "fraud-availability: budget spent" not in result.stdout


def test_history_json_falls_monotonically_while_only_bad_events_happen(tmp_path: Path) -> None:
    db = tmp_path / "aisre.db"
    end = fraud_traffic(db, hours_right=0, hours_wrong=4)
    config = tmp_path / "aisre.yaml"
    config.write_text(SLOS_YAML.format(db=db), encoding="utf-8")
    result = aisre_cli(
        "slo", "history", "fraud-correctness", "-c", str(config), "--json", "--step", "1h", "--at", iso(end)
    )
    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)["points"]
    assert len(points) == 30 * 24 + 1
    values = [1.0 if p["budget_remaining"] is None else p["budget_remaining"] for p in points]
    assert values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(1 - 100)
    plot = aisre_cli("slo", "history", "fraud-correctness", "-c", str(config), "--step", "1d", "--at", iso(end))
    assert plot.returncode == 0, plot.stderr
    assert "overspent" in plot.stdout and "no events" in plot.stdout


def test_validate_accepts_the_shipped_examples() -> None:
    result = aisre_cli("slo", "validate", "-c", "examples/slos.yaml", cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert "5 SLOs valid" in result.stdout
    assert "fraud-freshness: freshness, 1h slices, judged from model_trained_at" in result.stdout


def test_validate_names_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "aisre.yaml"
    config.write_text(
        """
slos:
  - name: odd-latency
    model: fraud
    objective: 0.999
    sli: {kind: latency, threshold_s: 0.123}
  - name: bad-where
    model: fraud
    objective: 0.99
    sli: {kind: correctness, where: {status: ok}}
""",
        encoding="utf-8",
    )
    result = aisre_cli("slo", "validate", "-c", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "odd-latency" in result.stderr and "0.123" in result.stderr
    assert "bad-where" in result.stderr and "tags.NAME or inputs.NAME" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "nope"], "no SLO named 'nope'"),
        (["history", "fraud-latency", "--step", "soon"], "--step"),
        (["status", "--at", "yesterday-ish"], "--at"),
    ],
)
def test_bad_input_exits_2_with_one_line(degraded: tuple[Path, float], args: list[str], message: str) -> None:
    config, _ = degraded
    result = aisre_cli("slo", *args, "-c", str(config))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_objective_outside_0_1_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "aisre.yaml"
    config.write_text("slos:\n  - {name: a, model: m, objective: 1.5, sli: {kind: availability}}\n", encoding="utf-8")
    result = aisre_cli("slo", "validate", "-c", str(config))
    assert result.returncode == 2
    assert "objective" in result.stderr and "Traceback" not in result.stderr
