"""`aisre drill`: every shipped scenario passes through the CLI (a subprocess, the real gateway, a real SQLite
store, real mock upstreams) with its detection delays in the JSON; an expectation that did not happen exits 1
naming it and what happened instead; a bad scenario exits 2 naming the key path."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aisre.drills import scenario_from_dict
from aisre.errors import ConfigError
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

DRILLS = sorted((Path(__file__).parent.parent / "examples" / "drills").glob("*.yaml"))


def drill(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "aisre", "drill", str(path), "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _run_shipped(name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = Path(tempfile.mkdtemp(prefix="aisre-drill-test-")) / f"{name}.json"
    result = drill(Path(__file__).parent.parent / "examples" / "drills" / f"{name}.yaml", "--json", str(out))
    return result, json.loads(out.read_text()) if out.exists() else {}


_RUNS: dict[str, Future[tuple[subprocess.CompletedProcess[str], dict[str, Any]]]] = {}
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="drill")


def shipped(name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One run of a shipped drill with its JSON, shared by the tests that read it (each run takes seconds).
    The next shipped drill (in the parametrised test's order) starts meanwhile: a drill keeps about one core
    busy and the suite runs one test at a time, so the machine's second core would otherwise sit idle."""
    names = [p.stem for p in DRILLS]
    following = names[names.index(name) + 1 :][:1] if name in names else []
    for n in [name, *following]:
        if n not in _RUNS:
            _RUNS[n] = _POOL.submit(_run_shipped, n)
    return _RUNS[name].result()


def test_the_shipped_drills_cover_the_fault_kinds_the_docs_promise() -> None:
    kinds = {f["kind"] for p in DRILLS for f in yaml.safe_load(p.read_text()).get("faults", [])}
    expected = {"covariate_drift", "concept_drift", "latency_spike", "refusal_storm", "bias_spike", "error_burst"}
    assert expected | {"replica_killed"} <= kinds, kinds


@pytest.mark.parametrize("path", DRILLS, ids=[p.stem for p in DRILLS])
def test_every_shipped_drill_passes_and_reports_each_faults_detection_delay(path: Path) -> None:
    result, report = shipped(path.stem)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert report["passed"] is True
    assert all(e["passed"] for e in report["expectations"])
    scenario = yaml.safe_load(path.read_text())
    duration = report["clock"]["duration_s"]
    detected = {e["after"] for e in scenario["expect"] if e.get("after") and _positive(e)}
    assert detected or scenario["name"] == "replica-killed"  # that drill asserts resilience: nothing to detect
    for fault in report["faults"]:
        if fault["fault"] not in detected:
            continue
        # a fault the scenario expects to be seen is detected after it started and before the drill ended
        assert fault["detected"], fault
        assert 0 <= fault["detection_delay_s"] < duration - fault["at_s"]
        assert fault["delay_by_kind_s"], fault
        bounds = [e for e in scenario["expect"] if e.get("after") == fault["fault"] and e.get("within")]
        for e in bounds:  # the delay is within the tightest bound the scenario states for this fault
            assert fault["detection_delay_s"] <= _seconds(e["within"]), (fault, e)
    kinds = {e["kind"] for e in report["timeline"]}
    assert "fault" in kinds
    assert report["steps"] and all(s["requests"] for s in report["steps"])


def test_the_covariate_drift_drill_rolls_the_canary_back_and_traffic_returns_to_stable() -> None:
    result, report = shipped("covariate-drift-canary")
    assert result.returncode == 0, result.stderr
    rollback = next(e for e in report["timeline"] if e["kind"] == "registry")
    assert rollback["actor"] == "playbook:drift-rollback" and rollback["to_status"] == "retired"
    before = [s for s in report["steps"] if s["t_s"] < 4 * 3600]
    after = [s for s in report["steps"] if s["t_s"] > rollback["t_s"]]
    assert any(k.startswith("v2/canary/") for s in before for k in s["requests"])  # the canary served...
    assert after and all(set(s["requests"]) == {"v1/primary/200"} for s in after)  # ...until rolled back


def test_the_full_loop_drill_pages_opens_the_breaker_rolls_back_and_traffic_recovers() -> None:
    """Issue #10's end-to-end case, asserted from the drill's timeline: a canary whose inputs drift and whose
    accuracy falls is detected, the burn-rate alert pages, the breaker opens, the canary is rolled back."""
    result, report = shipped("canary-full-loop")
    assert result.returncode == 0, result.stderr
    timeline = report["timeline"]

    def first(kind: str, **match: Any) -> dict[str, Any]:
        return next(e for e in timeline if e["kind"] == kind and all(e.get(k) == v for k, v in match.items()))

    fault = first("fault")
    page = first("alert", slo="fraud-v2-correctness", state="firing")
    opened = first("breaker", version="v2", after="open")
    rollback = first("registry", actor="playbook:drift-rollback")
    assert fault["t_s"] <= page["t_s"] <= opened["t_s"] <= rollback["t_s"]
    assert rollback["to_status"] == "retired" and rollback["stable_after"] == "v1"
    steps = report["steps"]
    assert [s for s in steps if s["t_s"] < fault["t_s"] and "v2/canary/200" in s["requests"]]  # the canary served
    diverted = [s for s in steps if opened["t_s"] < s["t_s"] <= rollback["t_s"]]
    assert diverted, "the breaker opened before the rollback: some steps ran with it open"
    for s in diverted:  # while open, v2's share is answered by the fallback rule, recorded route=fallback
        assert "v2/canary/200" not in s["requests"] and s["requests"].get(f"{RULE}/fallback/200", 0) > 0, s
    after = [s for s in steps if s["t_s"] > rollback["t_s"]]
    assert after and all(s["requests"] == {"v1/primary/200": sum(s["requests"].values())} for s in after)  # recovered
    (detection,) = report["faults"]
    assert detection["delay_by_kind_s"]["alert"] <= 3600 and detection["delay_by_kind_s"]["registry"] <= 2 * 3600


#: How a rule's answers are recorded and headed: by who answered (`Candidate.served_by`), not by the diverted version.
RULE = "rule:aisre.drills.rules:radius_rule"


def test_breakers_send_traffic_to_the_fallback_rule_while_open() -> None:
    result, report = shipped("bias-spike-breaker")
    assert result.returncode == 0, result.stderr
    opened = next(e for e in report["timeline"] if e["kind"] == "breaker" and e["after"] == "open")
    assert "SLO fraud-fairness burn rate" in opened["what"]
    before = [s for s in report["steps"] if s["t_s"] < opened["t_s"]]
    after = [s for s in report["steps"] if s["t_s"] > opened["t_s"]]
    assert all(f"{RULE}/fallback/200" not in s["requests"] for s in before)
    fallback = sum(s["requests"].get(f"{RULE}/fallback/200", 0) for s in after)
    assert fallback > 0.5 * sum(sum(s["requests"].values()) for s in after)  # most traffic, bar the probes
    assert any(e["kind"] == "incident" for e in report["timeline"])  # the breaker's incident


def _positive(e: dict[str, Any]) -> bool:
    return all(e.get(k) is not False for k in ("breached", "firing", "fired", "opened", "incident"))


def _seconds(value: Any) -> float:
    from aisre.config.slo import parse_duration

    return parse_duration(value) if isinstance(value, str) else float(value)


QUIET = {
    "name": "quiet",
    "clock": {"step": "30m", "duration": "3h", "warmup": "1h"},
    "traffic": {"requests_per_step": 8},
    "aisre": {
        "playbooks": [
            {
                "name": "drift-freeze",
                "model": "fraud",
                "version": "v1",
                "when": {"signal": "dataset_drift", "breached": True},
                "do": ["freeze_promotions"],
            }
        ]
    },
    "expect": [{"playbook": "drift-freeze", "fired": False}],
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_an_expectation_that_did_not_happen_exits_1_naming_it_and_what_happened_instead(tmp_path: Path) -> None:
    doc = {**QUIET, "expect": [{"playbook": "drift-freeze", "fired": True}, {"incident": False}]}
    result = drill(write(tmp_path, doc), "--json", str(tmp_path / "out.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "expectation failed: expected playbook drift-freeze fired; it never happened" in result.stderr
    assert "Instead:" in result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert [e["passed"] for e in report["expectations"]] == [False, True]


def test_a_negative_expectation_that_happened_exits_1_with_the_event(tmp_path: Path) -> None:
    doc = {
        **QUIET,
        "faults": [{"name": "shift", "kind": "covariate_drift", "at": "1h", "features": ["mean_radius"]}],
        "aisre": {
            **QUIET["aisre"],
            "monitors": [
                {
                    "name": "drift",
                    "model": "fraud",
                    "reference": "warmup",
                    "window": "30m",
                    "checks": ["data_drift"],
                    "share_threshold": 0.01,
                }
            ],
        },
    }
    result = drill(write(tmp_path, doc))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "expected no playbook drift-freeze fired; but at" in result.stderr
    assert "playbook drift-freeze: fired" in result.stderr


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"faults": [{"name": "x", "kind": "meteor", "at": "1h"}]}, "faults.0.kind: unknown fault 'meteor'"),
        ({"clock": {"step": "0m"}}, "clock.step: expected a duration"),
        ({"clock": {"step": "1h", "duration": "30m"}}, "clock.duration: expected 1..2000 steps"),
        ({"expect": [{"playbook": "p", "after": "nope"}]}, "expect.0.after: unknown fault 'nope'"),
        ({"expect": [{"playbook": "p", "rollback": "fraud"}]}, "exactly one of signal, alert"),
        ({"expect": []}, "expect: List should have at least 1 item"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"llm": {"model": "fraud"}}, "llm.model: 'fraud' is the tabular model's name too"),
        ({"versions": {"v1": {"status": "canary"}}}, "versions: exactly one version must be stable"),
        ({"aisre": {"store": "x"}}, "aisre: ['store'] are not drill sections"),
        (
            {"faults": [{"name": "x", "kind": "latency_spike", "at": "1h"}]},
            "faults.0.version: a latency_spike acts on HTTP replicas",
        ),
        (
            {"faults": [{"name": "x", "kind": "covariate_drift", "at": "1h", "features": ["shoe_size"]}]},
            "faults.0.features: unknown feature(s) ['shoe_size']",
        ),
        (
            {
                "aisre": {
                    "playbooks": [
                        {"name": "p", "model": "fraud", "when": {"slo": "x", "alert": "page"}, "do": ["boom"]}
                    ]
                }
            },
            "aisre.playbooks.0.do",
        ),
    ],
)
def test_a_bad_scenario_exits_2_with_one_line_naming_the_key(tmp_path: Path, change: dict[str, Any], key: str) -> None:
    result = drill(write(tmp_path, {**QUIET, **change}))
    assert result.returncode == 2, result.stdout + result.stderr
    assert key in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr


def test_a_scenario_file_that_is_not_yaml_or_missing_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    assert "not valid YAML" in drill(bad).stderr
    missing = drill(tmp_path / "missing.yaml")
    assert missing.returncode == 2 and "cannot read the scenario" in missing.stderr


def test_workdir_keeps_the_drills_store_and_is_not_reused(tmp_path: Path) -> None:
    scenario = write(tmp_path, QUIET)
    first = drill(scenario, "--workdir", str(tmp_path / "work"))
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "work" / "aisre.db").exists() and (tmp_path / "work" / "models" / "fraud-v1.joblib").exists()
    again = drill(scenario, "--workdir", str(tmp_path / "work"))
    assert again.returncode == 2 and "--workdir" in again.stderr and "already holds" in again.stderr


def test_scenario_validation_names_the_path_inside_a_fault() -> None:
    with pytest.raises(ConfigError) as info:
        scenario_from_dict({**QUIET, "faults": [{"name": "x", "kind": "concept_drift", "at": "1h", "flip": 2}]})
    assert "faults.0.flip" in info.value.problems[0]


def test_the_openai_mock_refuses_at_its_refusal_rate() -> None:
    app = openai_app(MockSettings(refusal_rate=1.0))
    server = serve_in_thread(app)
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
    try:
        text = httpx.post(f"{server.url}/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        assert text == "I'm sorry, but I can't help with that."
        app.state.mock.update({"refusal_rate": 0.0})
        text = httpx.post(f"{server.url}/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        assert text.startswith("mock reply")
    finally:
        server.stop()
    with pytest.raises(ValueError, match="refusal_rate: must be within 0..1"):
        MockSettings().merged({"refusal_rate": 2})
