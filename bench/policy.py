"""Added latency of the policy stages (authenticate + limit + budget + price + settle) per request.

    .venv/bin/python bench/policy.py [--requests 20000]

Runs `Policies.admit` and `Policies.price` (the request path) and then `Policies.settle`
(run by the gateway after the response: frees slots, reconciles tokens, charges budgets) for one keyed request at
a time (a key with rpm/tpm/concurrency limits and a budget, a model with limits, a price),
first with state in memory, then with state in a real redis-server on loopback (started
here on a free port). Prints the median and p99 per request in µs and the ratio.
Targets (issue 5): < 0.1 ms in memory, < 1 ms with Redis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import uvloop
from prometheus_client import CollectorRegistry

from aisre.config import parse_config
from aisre.gateway.policy import Policies
from aisre.store import open_store
from aisre.store.keys import KeyStore
from aisre.testing.server import free_port

PAYLOAD = {"model": "chat", "messages": [{"role": "user", "content": "hello there, how are you?"}], "max_tokens": 16}


def config_text(state_url: str | None) -> str:
    state = f"state: {state_url}\n" if state_url else ""
    return (
        state
        + """auth: {enabled: true, metrics: public}
models:
  chat:
    protocol: openai
    limits: {rpm: 100000000, tpm: 100000000, max_concurrent: 1000}
    budget: {usd: 1000000, period: monthly}
    versions: {v1: {replicas: ["http://127.0.0.1:1/v1"], price: {input_per_1m_usd: 0.5, output_per_1m_usd: 1.5}}}
"""
    )


async def run(policies: Policies, secret: str, n: int) -> tuple[list[float], list[float]]:
    """(time on the request path: authenticate + budgets + limits + price, time of the whole work
    including `settle`, which the gateway runs after the response has gone out)."""
    headers = {"authorization": f"Bearer {secret}"}
    model = policies.config.models["chat"]
    path, total = [], []
    for _ in range(n):
        t = time.perf_counter()
        key = policies.authenticate(headers)
        policies.authorize(key, "chat")
        admission = await policies.admit(key, "chat", model, PAYLOAD)
        cost = policies.price("chat", "v1", 12, 16)
        t_path = time.perf_counter()
        await policies.settle(admission, "chat", cost, 28)
        done = time.perf_counter()
        path.append(t_path - t)
        total.append(done - t)
    return path, total


def measure(state_url: str | None, tmp: Path, n: int) -> tuple[list[float], list[float]]:
    os.environ.setdefault("AISRE_KEY_SECRET", "b" * 40)
    store = open_store(f"sqlite:///{tmp / ('redis' if state_url else 'memory')}.db")
    _, secret = KeyStore(store).create(
        "bench", rpm=100_000_000, tpm=100_000_000, max_concurrent=1000, budget_usd=1_000_000, budget_period="monthly"
    )
    policies = Policies(parse_config(config_text(state_url)), store, CollectorRegistry())

    async def go() -> tuple[list[float], list[float]]:
        await run(policies, secret, min(n, 1000))  # warm-up: caches, script loading, connections
        result = await run(policies, secret, n)
        await policies.close()
        return result

    return uvloop.run(go())


def summary(name: str, times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p50, p99 = statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6
    print(f"{name:9s} median {p50:7.1f} µs   p99 {p99:7.1f} µs   ({len(times):,} requests)")
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aisre-policy-"))
    path, total = measure(None, tmp, args.requests)
    memory = summary("memory", path)
    summary("  +settle", total)
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print("redis-server not installed: `apt-get install redis-server` for the Redis figure")
        return
    port = free_port()
    server = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", ""], stdout=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)
        path, total = measure(f"redis://127.0.0.1:{port}/0", tmp, args.requests)
        shared = summary("redis", path)
        summary("  +settle", total)
    finally:
        server.terminate()
        server.wait(10)
    verdict_memory = "met" if memory[0] < 100 else "NOT met"
    verdict_redis = "met" if shared[0] < 1000 else "NOT met"
    print(
        f"targets: memory < 100 µs ({verdict_memory}), redis < 1000 µs ({verdict_redis}); "
        f"redis / memory = {shared[0] / memory[0]:.1f}x"
    )


if __name__ == "__main__":
    main()
