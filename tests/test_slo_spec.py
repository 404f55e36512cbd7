"""The `slos:` spec: the issue's five examples are expressible; bad specs are refused at their key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aisre.config import load_config, parse_config
from aisre.config.slo import parse_duration
from aisre.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MODELS = """
models:
  fraud:
    protocol: oip
    versions:
      v1: {replicas: ["http://127.0.0.1:9201"]}
"""


def test_the_five_issue_examples_load_with_their_natural_budgeting():
    config = load_config(ROOT / "examples" / "slos.yaml")
    got = {s.name: (s.sli.kind, s.budgeting_mode) for s in config.slos}
    assert got == {
        "fraud-latency": ("latency", "events"),
        "fraud-recall": ("quality", "timeslices"),
        "chat-p99-latency": ("latency", "timeslices"),
        "fraud-accuracy-critical": ("quality", "timeslices"),
        "fraud-freshness": ("freshness", "timeslices"),
    }
    latency = config.slos[0]
    assert latency.error_budget == pytest.approx(0.001) and latency.period_s == 30 * 86400
    assert config.slos[3].sli.where == {"tags.use_case": "critical"}


def test_check_config_accepts_the_examples():
    out = subprocess.run(
        [sys.executable, "-m", "aisre", "check-config", str(ROOT / "examples" / "slos.yaml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("slo", "path", "message"),
    [
        ("{name: a, model: fraud, objective: 0.99, sli: {kind: speed}}", "slos.0.sli.kind", "availability"),
        ("{name: a, model: fraud, objective: 1.0, sli: {kind: availability}}", "slos.0.objective", "less than 1"),
        ("{name: a, model: fraud, objective: 0, sli: {kind: availability}}", "slos.0.objective", "greater than 0"),
        (
            "{name: a, model: fraud, objective: 0.9, period: 1d, timeslice: 2d, sli: {kind: drift}}",
            "slos.0",
            "timeslice (2d) is longer than the period (1d)",
        ),
        (
            "{name: a, model: fraud, objective: 0.9, period: 12h, sli: {kind: availability}}",
            "slos.0",
            "alerting.ticket[0].long (1d) is longer than the period (12h)",
        ),
        ("{name: a, model: nosuch, objective: 0.9, sli: {kind: availability}}", "slos.0.model", "no model 'nosuch'"),
        (
            "{name: a, model: fraud, version: v9, objective: 0.9, sli: {kind: availability}}",
            "slos.0.version",
            "no version 'v9'",
        ),
        ("{name: a, model: fraud, objective: 0.9, sli: {kind: latency}}", "slos.0.sli", "needs threshold_s"),
        (
            "{name: a, model: fraud, objective: 0.9, sli: {kind: quality, metric: vibes, min: 1}}",
            "slos.0.sli",
            "metric: expected one of",
        ),
        (
            "{name: a, model: fraud, objective: 0.9, budgeting: events, sli: {kind: drift}}",
            "slos.0",
            "use budgeting: timeslices",
        ),
        ("{name: A B, model: fraud, objective: 0.9, sli: {kind: availability}}", "slos.0.name", "lowercase slug"),
        ("{name: a, model: fraud, objective: 0.9, period: 30x, sli: {kind: availability}}", "slos.0.period", "5m"),
    ],
)
def test_bad_specs_are_refused_at_their_key_path(slo: str, path: str, message: str):
    with pytest.raises(ConfigError) as err:
        parse_config(MODELS + f"slos:\n  - {slo}\n")
    text = str(err.value)
    assert path in text and message in text, text


def test_every_problem_of_the_slos_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config(
            MODELS
            + "slos:\n"
            + "  - {name: a, model: nosuch, objective: 0.9, sli: {kind: availability}}\n"
            + "  - {name: a, model: fraud, version: v9, objective: 0.9, sli: {kind: availability}}\n"
        )
    assert len(err.value.problems) == 3, err.value.problems  # unknown model, duplicate name, unknown version


def test_without_a_models_section_any_model_name_is_fine():
    config = parse_config("slos:\n  - {name: a, model: sdk-model, objective: 0.9, sli: {kind: availability}}\n")
    assert config.slos[0].model == "sdk-model"


def test_durations():
    assert parse_duration("5m") == 300 and parse_duration("1.5h") == 5400 and parse_duration("4w") == 28 * 86400
    with pytest.raises(ValueError, match="units s, m, h, d, w"):
        parse_duration("0m")
