"""Issue #12 item 4, as far as one machine shows it: two `aisre serve` processes, each in its own working
directory (two "hosts"), sharing one redis-server (rate limits, breakers) and one PostgreSQL (records, API keys).

Traffic goes through both; every answered call is in PostgreSQL exactly once; a key's rate limit holds
across the pair; a key revoked in the database is refused by both; a breaker opened by one gateway's
failures diverts the other's traffic (pushed through Redis, timed) before that one could have opened its own;
and one judge (`aisre slo status`, `aisre watch --once`) reading PostgreSQL counts the SLO events of both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from aisre.store import open_store
from aisre.store.keys import KeyStore
from aisre.store.postgres import sqlite_only_config
from aisre.testing.server import serve_in_subprocess

from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL
from .test_gateway_scaleout import Redis, start_gateway

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is installed by make test")
SECRET = "m" * 40
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 10}


@pytest.fixture
def two_hosts(pg_server, tmp_path: Path):  # noqa: F811
    url = pg_server.create_schema()
    redis = Redis()
    upstream = serve_in_subprocess("openai", completion_tokens=10)
    text = f"""store: {{url: '{url}', durability: durable}}
state: {{url: "redis://127.0.0.1:{redis.port}/0", timeout_s: 1.0}}
auth: {{enabled: true, metrics: public}}
dashboard: {{enabled: false}}
models:
  chat:
    protocol: openai
    versions:
      v1: {{replicas: ["{upstream.url}/v1"]}}
"""
    configs = []
    for host in ("host-a", "host-b"):
        (tmp_path / host).mkdir()
        configs.append(tmp_path / host / "aisre.yaml")
        configs[-1].write_text(text)
    from aisre.config import load_config

    assert sqlite_only_config(load_config(configs[0])) == []  # nothing here needs a SQLite store
    env = {**os.environ, "AISRE_KEY_SECRET": SECRET}
    gateways = [start_gateway(config, env) for config in configs]
    keys = KeyStore(url, server_secret=SECRET)
    try:
        yield url, [u for _, u in gateways], [p for p, _ in gateways], keys, tmp_path
    finally:
        for process, _ in gateways:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        keys.close()
        upstream.stop()
        if redis.process and redis.process.poll() is None:
            redis.kill()


def _traffic(urls: list[str], secret: str, total: int, threads: int = 8) -> tuple[Counter, list[str]]:
    """`total` calls spread over both gateways; the statuses (by gateway) and the record ids answered."""
    statuses: Counter = Counter()
    record_ids: list[str] = []
    lock = threading.Lock()
    todo = iter(range(total))

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            for n in todo:
                url = urls[n % len(urls)]
                r = client.post(f"{url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {secret}"})
                with lock:
                    statuses[(url, r.status_code)] += 1
                    if r.status_code == 200:
                        record_ids.append(r.headers["x-aisre-record-id"])

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statuses, record_ids


def test_two_gateways_record_every_call_once_in_one_database_and_share_limits_and_keys(two_hosts) -> None:
    url, urls, processes, keys, tmp_path = two_hosts
    _, open_secret = keys.create("open")  # no limit: every call is answered
    statuses, answered = _traffic(urls, open_secret, 120)
    assert {u: statuses[(u, 200)] for u in urls} == {u: 60 for u in urls}, statuses

    rpm = 40
    _, limited = keys.create("limited", rpm=rpm)
    limited_statuses, limited_answered = _traffic(urls, limited, 3 * rpm)
    admitted = sum(n for (_, status), n in limited_statuses.items() if status == 200)
    refused = sum(n for (_, status), n in limited_statuses.items() if status == 429)
    # GCRA admits `rpm` at once, then rpm/60 a second: a few more on a slow machine, never twice the limit
    # (which two gateways counting apart would admit).
    assert rpm <= admitted < 1.5 * rpm and admitted + refused == 3 * rpm, limited_statuses
    assert {u for (u, status) in limited_statuses if status == 429} == set(urls), "both gateways enforce it"

    revoked, revoked_secret = keys.create("soon-revoked")
    assert {
        httpx.post(
            f"{u}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {revoked_secret}"}
        ).status_code
        for u in urls
    } == {200}
    keys.revoke(revoked.id)  # one database: both hosts refuse it at once
    assert {
        httpx.post(
            f"{u}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {revoked_secret}"}
        ).status_code
        for u in urls
    } == {401}

    for process in processes:  # a graceful stop drains each writer; durable mode acknowledged each commit
        process.terminate()
        assert process.wait(60) in (0, -15)  # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught
    ids = answered + limited_answered
    assert len(set(ids)) == len(ids) == 120 + admitted
    store = open_store(url)
    try:
        assert store.missing_ids(ids) == [], "an answered call is missing from PostgreSQL"
        with store._errors("counting"):
            rows = (
                store._connection()
                .execute("SELECT id, count(*) FROM inferences GROUP BY id HAVING count(*) > 1")
                .fetchall()
            )
        assert rows == []
        assert store.count() >= len(ids) + 2  # the revoked key's two answered calls, and any refusals the gateway logs
    finally:
        store.close()
    assert not list(tmp_path.rglob("*.db")), "no host wrote a SQLite file"


def test_a_breaker_opened_on_one_gateway_diverts_the_other_before_its_own_could_open(pg_server, tmp_path) -> None:  # noqa: F811
    """The failing version is seen only by gateway a; b adopts a's open breaker through Redis (pushed on a channel,
    the issue's "seen by the other within 1 s") after fewer failures than its own breaker would need to open: the
    state was shared. The hand-over is timed from a's first diverted answer to b's, and printed."""
    url = pg_server.create_schema()
    redis = Redis()
    failing = serve_in_subprocess("openai", completion_tokens=10, fail_rate=1.0, fail_status=500)
    healthy = serve_in_subprocess("openai", completion_tokens=10)
    need = 20  # failures a breaker needs to open: b must switch well before it could have counted that many
    text = f"""store: '{url}'
state: {{url: "redis://127.0.0.1:{redis.port}/0", timeout_s: 1.0}}
gateway: {{retries: {{budget_ratio: 0.0}}}}
models:
  chat:
    protocol: openai
    versions:
      v2: {{replicas: ["{failing.url}/v1"]}}
      v1: {{replicas: ["{healthy.url}/v1"]}}
breakers:
  - {{model: chat, version: v2, fallback: {{version: v1}}, open_for: 10m,
      open_when: [{{error_rate: 0.5, window_requests: {need}, min_requests: {need}}}]}}
slos:
  - {{name: chat-availability, model: chat, objective: 0.9, sli: {{kind: availability}}}}
"""
    configs = []
    for host in ("host-a", "host-b"):
        (tmp_path / host).mkdir()
        configs.append(tmp_path / host / "aisre.yaml")
        configs[-1].write_text(text)
    gateways = [start_gateway(config, dict(os.environ)) for config in configs]
    (_, a), (_, b) = gateways
    after = 10  # calls to b once it diverted: every one stays diverted (no poll undoes the pushed state)
    try:
        with httpx.Client(timeout=30) as client:
            first = [client.post(f"{a}/v1/chat/completions", json=BODY) for _ in range(need)]
            assert {r.status_code for r in first} == {500}  # v2 fails; a's breaker counts
            opened = client.post(f"{a}/v1/chat/completions", json=BODY)
            opened_at = time.monotonic()
            assert (opened.status_code, opened.headers["x-aisre-version"]) == (200, "v1"), "a's breaker is open"
            failures_on_b = 0
            while True:
                r = client.post(f"{b}/v1/chat/completions", json=BODY)
                if r.status_code == 200:
                    handover_s = time.monotonic() - opened_at
                    break
                failures_on_b += 1
                assert failures_on_b < need // 2, "b never adopted a's open breaker"
                time.sleep(0.05)
            assert r.headers["x-aisre-version"] == "v1"
            print(f"breaker hand-over a -> b: {handover_s * 1000:.0f} ms, {failures_on_b} failed calls on b meanwhile")
            # The issue asks for 1 s; the bound is wider so a loaded CI machine cannot fail it (the 1 s poll this
            # replaced took up to a second plus Redis round trips; the push takes milliseconds).
            assert handover_s < 3.0, f"b adopted a's breaker only after {handover_s:.2f} s"
            later = [client.post(f"{b}/v1/chat/completions", json=BODY) for _ in range(after)]
            assert [(x.status_code, x.headers.get("x-aisre-version")) for x in later] == [(200, "v1")] * after
        for process, _ in gateways:  # a graceful stop drains each writer
            process.terminate()
            assert process.wait(60) in (0, -15)
        # One judge over the union: the SLO read from PostgreSQL counts the calls of both gateways (judged two
        # minutes ahead, so the minute the calls fell in is a closed one).
        ahead = dt.datetime.fromtimestamp(time.time() + 120, dt.UTC).isoformat()
        status = subprocess.run(
            [sys.executable, "-m", "aisre", "slo", "status", "-c", str(configs[0]), "--json", "--at", ahead],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr
        [judged] = json.loads(status.stdout)
        assert (judged["good"], judged["total"]) == (2 + after, need + 1 + failures_on_b + 1 + after), judged
        watch = subprocess.run(
            [sys.executable, "-m", "aisre", "watch", "-c", str(configs[1]), "--once"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert watch.returncode == 0, watch.stdout + watch.stderr
        assert "SLO chat-availability:" in watch.stdout  # judged now: the calls' minute may still be open
    finally:
        for process, _ in gateways:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        failing.stop()
        healthy.stop()
        redis.kill()
