"""AI circuit breakers in a real gateway: errors open one, a drift signal opens one, traffic goes to the
fallback rule or version (route=fallback records), probes close it, every transition is on an incident."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisre.records import Signal
from aisre.respond.incidents import Incidents
from aisre.testing.oip_server import oip_app
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings
from tests.gateway_helpers import RunningGateway, eventually, gateway_config, metric_value

RULES = """
def large_amounts(rows):
    return [1.0 if row.get("x0", 0) > 10 else 0.0 for row in rows]

def polite(messages):
    return "Our assistant is resting; a human will answer shortly."
"""


@pytest.fixture
def rules_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"breaker_rules_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(RULES))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def infer(url: str, rows: list[list[float]]) -> httpx.Response:
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]}
    return httpx.post(f"{url}/v2/models/fraud/infer", json=body, timeout=30)


def test_errors_open_the_breaker_the_rule_answers_and_healthy_probes_close_it(
    tmp_path: Path, rules_module: str
) -> None:
    replica = serve_in_thread(oip_app(MockSettings(model="fraud", fail_rate=1.0, fail_status=500)))
    models = {"fraud": {"protocol": "oip", "versions": {"v2": {"replicas": [replica.url]}}}}
    breakers = [
        {
            "model": "fraud",
            "version": "v2",
            "fallback": {"rule": f"{rules_module}:large_amounts"},
            "open_when": [{"error_rate": 0.5, "window_requests": 10, "min_requests": 5}],
            "open_for": "1s",
            "probes": 3,
            "probe_share": 1.0,
        }
    ]
    config = gateway_config(tmp_path, models, breakers=breakers, gateway={"retries": {"budget_ratio": 0.0}})
    try:
        with RunningGateway(config) as gw:
            statuses = [infer(gw.url, [[1.0, 2.0]]).status_code for _ in range(5)]
            assert statuses == [500] * 5  # the version fails (its 500 relayed); the breaker is counting
            diverted = infer(gw.url, [[20.0, 1.0], [1.0, 1.0]])
            assert diverted.status_code == 200, diverted.text
            assert diverted.headers["x-aisre-route"] == "fallback"
            outputs = {o["name"]: o for o in diverted.json()["outputs"]}
            assert outputs["predict"]["data"] == [1.0, 0.0]  # the rule's answer, in OIP's shape
            assert metric_value(gw, "aisre_breaker_state", model="fraud", version="v2") == 2
            httpx.post(f"{replica.url}/_mock/settings", json={"fail_rate": 0.0})
            time.sleep(1.1)  # open_for: the next requests are probes
            probes = [infer(gw.url, [[1.0, 2.0]]) for _ in range(3)]
            assert [p.headers["x-aisre-route"] for p in probes] == ["primary"] * 3
            assert metric_value(gw, "aisre_breaker_state", model="fraud", version="v2") == 0
            gw.gateway.recorder.flush()
            records = gw.gateway.recorder.store.records()
            fallback = [r for r in records if r.route == "fallback"]
            assert len(fallback) == 2 and fallback[0].tags["fallback_rule"] == f"{rules_module}:large_amounts"
            assert fallback[0].tags["fallback_reason"] == "breaker open on v2"
            transitions = [(t.before.value, t.after.value) for t in gw.gateway.breakers.transitions]
            assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
            (incident,) = Incidents(gw.gateway.recorder.store).list()
            timeline = [e.kind for e in Incidents(gw.gateway.recorder.store).get(incident.id).events]
            assert incident.title.startswith("breaker opened on fraud v2: error rate 1.000 > 0.5")
            assert timeline == ["trigger", "evidence", "outcome"]
    finally:
        replica.stop()


def test_a_drift_signal_opens_the_quality_breaker_and_a_latency_breaker_stays_closed(tmp_path: Path) -> None:
    replica = serve_in_thread(oip_app(MockSettings(model="fraud")))
    models = {
        "fraud": {
            "protocol": "oip",
            "versions": {"v1": {"replicas": [replica.url]}, "v2": {"replicas": [replica.url]}},
            "route": {"v2": 100},
        }
    }
    breakers = [
        {
            "model": "fraud",
            "version": "v2",
            "fallback": {"version": "v1"},
            "open_when": [{"signal": "dataset_drift", "breached": True}],
        },
        {
            "model": "fraud",
            "version": "v1",
            "fallback": {"rule": "os.path:basename"},
            "open_when": [{"latency_p99_s": 5.0}],
        },
    ]
    config = gateway_config(tmp_path, models, breakers=breakers, slo_evaluation={"interval": "1s"})
    try:
        with RunningGateway(config) as gw:
            assert infer(gw.url, [[1.0]]).headers["x-aisre-version"] == "v2"
            now = time.time()
            drift = Signal("fraud", "v2", "dataset_drift", 1.0, 0.5, True, {}, now - 3600, now)
            gw.gateway.recorder.store.write_signals([drift], now)
            eventually(lambda: infer(gw.url, [[1.0]]).headers["x-aisre-version"] == "v1", timeout_s=30)
            answer = infer(gw.url, [[1.0]])
            assert answer.headers["x-aisre-route"] == "fallback" and answer.status_code == 200
            states = {(t.version, t.after.value) for t in gw.gateway.breakers.transitions}
            assert states == {("v2", "open")}  # v1's latency breaker heard nothing of the drift
            assert "dataset_drift breached=True" in gw.gateway.breakers.transitions[0].reason
    finally:
        replica.stop()


def test_an_llm_refusal_storm_opens_the_breaker_and_the_rule_answers_through_the_openai_sdk(
    tmp_path: Path, rules_module: str
) -> None:
    import openai

    upstream = serve_in_thread(openai_app(MockSettings(refusal_rate=1.0)))
    models = {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}}}}
    breakers = [
        {
            "model": "chat",
            "version": "v1",
            "fallback": {"rule": f"{rules_module}:polite"},
            "open_when": [{"signal": "llm_refusal_rate", "max": 0.2}],
        }
    ]
    config = gateway_config(tmp_path, models, breakers=breakers, slo_evaluation={"interval": "1s"})
    try:
        with RunningGateway(config) as gw:
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0)
            messages: Any = [{"role": "user", "content": "hello"}]
            first = client.chat.completions.create(model="chat", messages=messages)
            assert "sorry" in (first.choices[0].message.content or "").lower()  # the storm
            now = time.time()  # what a monitoring job's llm_quality check writes for the window
            storm = Signal("chat", "v1", "llm_refusal_rate", 1.0, 0.2, True, {}, now - 600, now)
            gw.gateway.recorder.store.write_signals([storm], now)

            def polite() -> bool:
                reply = client.chat.completions.create(model="chat", messages=messages)
                return (reply.choices[0].message.content or "").startswith("Our assistant is resting")

            eventually(polite, timeout_s=30)
            stream = client.chat.completions.create(model="chat", messages=messages, stream=True)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            assert text == "Our assistant is resting; a human will answer shortly."
    finally:
        upstream.stop()


def test_a_bias_spike_on_one_group_opens_the_breaker_through_the_fairness_slo(
    tmp_path: Path, rules_module: str
) -> None:
    import numpy as np

    from aisre.records import InferenceRecord

    replica = serve_in_thread(oip_app(MockSettings(model="fraud")))
    models = {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": [replica.url]}}}}
    fairness = {
        "name": "fraud-fairness",
        "model": "fraud",
        "objective": 0.9,
        "period": "1h",
        "timeslice": "1m",
        "sli": {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "group", "max": 0.1},
        "alerting": {"page": [{"long": "30m", "short": "5m", "budget_percent": 2}], "ticket": []},
    }
    breakers = [
        {
            "model": "fraud",
            "version": "v1",
            "fallback": {"rule": f"{rules_module}:large_amounts"},
            "open_when": [{"slo": "fraud-fairness", "burn_rate": 5, "window": "5m"}, {"latency_p99_s": 5.0}],
        }
    ]
    config = gateway_config(tmp_path, models, breakers=breakers, slos=[fairness], slo_evaluation={"interval": "1s"})
    rng = np.random.default_rng(3)
    try:
        with RunningGateway(config) as gw:
            assert infer(gw.url, [[1.0]]).headers["x-aisre-route"] == "primary"
            now = time.time()
            minute0 = (now // 60 - 10) * 60  # ten closed minutes in which group b is approved far less often
            records = [
                InferenceRecord(
                    model="fraud",
                    version="v1",
                    inputs={"group": group, "x0": 1.0},
                    prediction=int(rng.random() < (0.6 if group == "a" else 0.1)),
                    latency_s=0.01,
                    ts=minute0 + m * 60 + i * 0.5,
                )
                for m in range(10)
                for i, group in enumerate(["a", "b"] * 30)
            ]
            gw.gateway.recorder.store.write_batch(records)
            eventually(lambda: infer(gw.url, [[1.0]]).headers["x-aisre-route"] == "fallback", timeout_s=30)
            (transition,) = gw.gateway.breakers.transitions
            assert "SLO fraud-fairness burn rate" in transition.reason and "over 5m" in transition.reason
    finally:
        replica.stop()


@pytest.mark.skipif(__import__("shutil").which("redis-server") is None, reason="redis-server is installed by make test")
def test_a_breaker_opened_in_one_gateway_diverts_the_other_through_redis(tmp_path: Path, rules_module: str) -> None:
    from tests.test_gateway_scaleout import Redis

    redis = Redis()
    replica = serve_in_thread(oip_app(MockSettings(model="fraud", fail_rate=1.0, fail_status=500)))
    models = {"fraud": {"protocol": "oip", "versions": {"v2": {"replicas": [replica.url]}}}}
    breakers = [
        {
            "model": "fraud",
            "version": "v2",
            "fallback": {"rule": f"{rules_module}:large_amounts"},
            "open_when": [{"error_rate": 0.5, "window_requests": 10, "min_requests": 5}],
            "open_for": "10m",
        }
    ]
    state = {"url": f"redis://127.0.0.1:{redis.port}/0", "timeout_s": 1.0}
    configs = [
        gateway_config(tmp_path / name, models, breakers=breakers, state=state)
        for name in ("a", "b")
        if (tmp_path / name).mkdir() is None
    ]
    try:
        with RunningGateway(configs[0]) as a, RunningGateway(configs[1]) as b:
            for _ in range(5):
                infer(a.url, [[1.0]])  # only gateway a sees the failures
            assert infer(a.url, [[1.0]]).headers["x-aisre-route"] == "fallback"
            eventually(lambda: b.gateway.routing.breaker_open("fraud", "v2"), timeout_s=10)  # adopted from Redis
            assert infer(b.url, [[1.0]]).headers["x-aisre-route"] == "fallback"
            assert b.gateway.breakers.transitions == []  # b diverts on a's word; its own breaker saw nothing
    finally:
        replica.stop()
        redis.kill()
