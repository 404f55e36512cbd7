"""A real `aisre serve` with every kind of metric aisre exports on its /metrics: two chat versions behind
mock upstreams (one failing, so its breaker opens and its traffic falls back), prices and a budget, Redis
shared state, two SLOs, and monitoring jobs over seeded stored windows (drift, realised and estimated
accuracy, fairness, LLM quality). Used by tests/test_grafana.py to check the Grafana dashboard's metrics."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from aisre import Monitor
from aisre.records import Label
from aisre.store.sqlite import SQLiteStore
from aisre.testing.openai_server import openai_app
from aisre.testing.server import free_port, serve_in_thread
from aisre.testing.settings import MockSettings

HOUR = 3600.0
PER_HOUR = 240
REDIS_SERVER = shutil.which("redis-server")
METRICS_TOKEN = "metrics-token-for-the-grafana-tests"


def seed_store(db: Path, now: float) -> float:
    """Three complete past hours of a binary classifier (credit/v1: reference, healthy, drifted and wrong)
    with their labels, and two of a chat model (assistant/v1: JSON answers, then refusals). Returns the
    reference hour's start."""
    start = math.floor(now / HOUR) * HOUR - 3 * HOUR
    rng = np.random.default_rng(7)
    mon = Monitor("credit", "v1", store=f"sqlite:///{db}", durability="fast")
    labels = []
    for h, kind in enumerate(["ok", "ok", "drifted"]):
        for i in range(PER_HOUR):
            x1, x2 = (float(v) for v in rng.normal(size=2))
            if kind == "drifted":
                x1 += 1.5
            group = "a" if i % 2 else "b"
            p1 = 1 / (1 + math.exp(-3 * (2 * x1 + x2)))
            pred = int(p1 >= 0.5)
            rid = mon.record(
                {"x1": x1, "x2": x2, "group": group},
                prediction=pred,
                scores={"0": 1 - p1, "1": p1},
                ts=start + h * HOUR + i * (HOUR / PER_HOUR),
            )
            wrong = rng.random() < (0.4 if kind == "drifted" else 0.04)
            labels.append(Label(rid, 1 - pred if wrong else pred, start + 3 * HOUR - 1))
    mon.recorder.close()
    SQLiteStore(db).add_labels(labels)
    chat = Monitor("assistant", "v1", store=f"sqlite:///{db}", durability="fast")
    for h, kind in enumerate(["ok", "ok", "refusing"]):
        for i in range(60):
            refuse = kind == "refusing" and i % 3 == 0
            text = "I'm sorry, but I can't help with that." if refuse else json.dumps({"answer": i})
            chat.record({"prompt": f"q{i}"}, output_text=text, operation="chat", ts=start + h * HOUR + i * (HOUR / 60))
    chat.recorder.close()
    return start


def write_config(tmp_path: Path, mocks: dict[str, str], redis_url: str | None, reference_start: float) -> Path:
    price = {"input_per_1m_usd": 0.5, "output_per_1m_usd": 1.5}
    reference = {"since": reference_start, "until": reference_start + HOUR}
    doc: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'aisre.db'}", "durability": "fast"},
        "models": {
            "chat": {
                "protocol": "openai",
                "versions": {
                    "v1": {"replicas": [f"{mocks['v1']}/v1"], "price": price},
                    "v2": {"replicas": [f"{mocks['v2']}/v1"], "price": price},
                },
                "route": {"v1": 50, "v2": 50},
                "budget": {"usd": 100, "period": "daily"},
            },
            # the monitored models: their records are seeded in the store (no live traffic is sent to them)
            "credit": {"protocol": "oip", "versions": {"v1": {"replicas": [mocks["v1"]]}}},
            "assistant": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{mocks['v1']}/v1"]}}},
        },
        "breakers": [
            {
                "model": "chat",
                "version": "v2",
                "fallback": {"version": "v1"},
                "open_when": [{"error_rate": 0.5, "window_requests": 10, "min_requests": 4}],
            }
        ],
        "slos": [
            {"name": "chat-availability", "model": "chat", "objective": 0.99, "sli": {"kind": "availability"}},
            {
                "name": "credit-drift",
                "model": "credit",
                "objective": 0.9,
                "sli": {"kind": "drift"},
            },
        ],
        "slo_evaluation": {"interval": "1s"},
        "monitors": [
            {
                "name": "credit-hourly",
                "model": "credit",
                "version": "v1",
                "reference": reference,
                "window": "1h",
                "checks": ["data_drift", "prediction_drift", "performance", "estimated_performance", "fairness"],
                "performance": {"metrics": ["accuracy"], "min": {"accuracy": 0.9}, "min_labels": 20},
                "estimated_performance": {"metric": "accuracy", "min": 0.9},
                "fairness": {"sensitive": ["group"], "metrics": ["demographic_parity_difference"], "max_gap": 0.1},
            },
            {
                "name": "assistant-quality",
                "model": "assistant",
                "version": "v1",
                "reference": reference,
                "window": "1h",
                "checks": ["llm_quality"],
                "llm_quality": {"expect_json": True, "max": {"refusal_rate": 0.1}},
            },
        ],
    }
    if redis_url:
        doc["state"] = {"url": redis_url}
    # /metrics wants this bearer token (a metrics token alone protects it; model requests stay open)
    doc["auth"] = {"metrics_token": METRICS_TOKEN}
    path = tmp_path / "aisre.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class LiveAisre:
    """Mocks, Redis, a seeded store and `python -m aisre serve` on a free port, with traffic sent."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._stoppers: list[Any] = []
        healthy = serve_in_thread(openai_app(MockSettings(completion_tokens=8, seed=1)))
        failing = serve_in_thread(openai_app(MockSettings(fail_rate=1.0, fail_status=503, seed=2)))
        self._stoppers += [healthy.stop, failing.stop]
        redis_url = None
        if REDIS_SERVER:
            port = free_port()
            redis = subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._stoppers.append(lambda: (redis.terminate(), redis.wait(10)))
            redis_url = f"redis://127.0.0.1:{port}/0"
        reference_start = seed_store(tmp_path / "aisre.db", time.time())
        self.config = write_config(tmp_path, {"v1": healthy.url, "v2": failing.url}, redis_url, reference_start)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (tmp_path / "serve.log").open("wb")
        cmd = [sys.executable, "-m", "aisre", "serve", "-c", str(self.config), "--port", str(self.port)]
        self.process = subprocess.Popen(cmd, env=dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()

    def log(self) -> str:
        return (self.tmp_path / "serve.log").read_text()[-4000:]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def send_traffic(self) -> None:
        """Plain and streamed chats (v2 fails until its breaker opens), and one request for an unknown model."""
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in range(40):
                client.post("/v1/chat/completions", json=body | {"stream": i % 2 == 0})
            client.post("/v1/chat/completions", json=body | {"model": "no-such-model"})

    def metrics_text(self) -> str:
        answer = httpx.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        answer.raise_for_status()
        return answer.text

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        finally:
            self._log.close()
            for stop in reversed(self._stoppers):
                stop()
