"""`aisre ab report`, `aisre canary analyze`, `aisre shadow report` on a real SQLite store: tables,
--json, exit codes (rollback / shadow fail = 1), bad input in one line (exit 2)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from aisre import InferenceRecord, Label, Route, Status
from aisre.cli.main import app
from aisre.store import open_store


def _fill(path, canary_error=0.01, canary_accuracy=0.85):
    store = open_store(f"sqlite:///{path}")
    rng = np.random.default_rng(7)
    records, labels = [], []
    now = 1_790_000_000.0  # inside any --since window used below: the records are "recent" relative to it
    for version, route, error, acc in (
        ("v1", Route.PRIMARY, 0.02, 0.78),
        ("v2", Route.CANARY, canary_error, canary_accuracy),
    ):
        for i in range(1500):
            failed = rng.random() < error
            truth = int(rng.random() < 0.5)
            pred = None if failed else (truth if rng.random() < acc else 1 - truth)
            x = {"f": i}
            r = InferenceRecord(
                model="m",
                version=version,
                route=route,
                status=Status.ERROR if failed else Status.OK,
                prediction=pred,
                inputs=x,
                latency_s=float(rng.gamma(4, 0.02)),
                key_id=f"{version}-k{i % 9}",
                ts=now + i,
            )
            records.append(r)
            if not failed:
                labels.append(Label(r.id, truth, now + 5000))
            if version == "v1" and i < 300:  # v3 shadows the first 300 primary requests, always agreeing
                records.append(
                    InferenceRecord(
                        model="m",
                        version="v3",
                        route=Route.SHADOW,
                        prediction=pred,
                        status=r.status,
                        inputs=x,
                        latency_s=r.latency_s,
                        key_id=r.key_id,
                        ts=now + i + 0.2,
                    )
                )
    store.write_batch(records, durable=True)
    store.add_labels(labels)
    store.close()
    return f"sqlite:///{path}"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ab_report_prints_tables_and_verdict(tmp_path):
    url = _fill(tmp_path / "a.db")
    result = run("ab", "report", "m", "--a", "v1", "--b", "v2", "--store", url)
    assert result.exit_code == 0, result.output
    assert "verdict: B wins on accuracy" in result.output
    assert "newcombe" in result.output
    doc = json.loads(
        run("ab", "report", "m", "--a", "v1", "--b", "v2", "--store", url, "--json", "--sequential").output
    )
    assert doc["verdict"] == "B wins" and doc["sequential"] is True
    assert doc["comparisons"][2]["sequential"]["p_value"] < 0.05


def test_canary_analyze_promotes_better_and_exits_1_on_rollback(tmp_path):
    good = _fill(tmp_path / "good.db")
    result = run("canary", "analyze", "m", "--canary", "v2", "--stable", "v1", "--store", good)
    assert result.exit_code == 0, result.output
    assert "decision: promote" in result.output
    bad = _fill(tmp_path / "bad.db", canary_error=0.15)
    result = run("canary", "analyze", "m", "--canary", "v2", "--stable", "v1", "--store", bad, "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["decision"] == "rollback"


def test_shadow_report_passes_an_agreeing_shadow_and_writes_signals(tmp_path):
    url = _fill(tmp_path / "s.db")
    result = run("shadow", "report", "m", "--shadow", "v3", "--store", url, "--write-signals")
    assert result.exit_code == 0, result.output
    assert "shadow: PASS" in result.output
    store = open_store(url)
    assert [s.value for _, s in store.signals(model="m", name="shadow_agreement")] == [1.0]


def test_bad_input_is_one_line_exit_2(tmp_path):
    url = _fill(tmp_path / "e.db")
    result = run("ab", "report", "m", "--a", "v1", "--b", "nope", "--store", url)
    assert result.exit_code == 2
    assert "m/nope: no served records" in result.output
    result = run("shadow", "report", "m", "--shadow", "v1", "--store", url, "--since", "yesterday")
    assert result.exit_code == 2 and "--since" in result.output
